package libpod

import (
	"context"
	"net/url"
)

// ContainerRemove removes a container and its anonymous volumes; with force a running one is killed first.
// A container already gone is not an error.
func (c *Client) ContainerRemove(ctx context.Context, nameOrID string, force bool) error {
	q := url.Values{"v": {"true"}}
	if force {
		q.Set("force", "true")
	}
	err := c.call(ctx, "remove container "+nameOrID, "DELETE", "/containers/"+url.PathEscape(nameOrID), q, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}
