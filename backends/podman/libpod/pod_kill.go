package libpod

import (
	"context"
	"net/url"
)

// PodKill sends signal (e.g. "KILL") to every container of a pod. A pod already gone or with nothing running
// is not an error.
func (c *Client) PodKill(ctx context.Context, nameOrID, signal string) error {
	q := url.Values{"signal": {signal}}
	err := c.call(ctx, "kill pod "+nameOrID, "POST", "/pods/"+url.PathEscape(nameOrID)+"/kill", q, nil, nil)
	if IsNotFound(err) || IsConflict(err) {
		return nil
	}
	return err
}
