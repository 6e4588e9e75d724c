package libpod

import (
	"context"
	"net/url"
)

// PodRemove removes a pod and, with force, its containers (killing running ones). A pod already gone is not
// an error.
func (c *Client) PodRemove(ctx context.Context, nameOrID string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "true")
	}
	err := c.call(ctx, "remove pod "+nameOrID, "DELETE", "/pods/"+url.PathEscape(nameOrID), q, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}
