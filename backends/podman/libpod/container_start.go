package libpod

import (
	"context"
	"net/url"
)

// ContainerStart starts a created or exited container. A container already running is not an error.
func (c *Client) ContainerStart(ctx context.Context, nameOrID string) error {
	err := c.call(ctx, "start container "+nameOrID, "POST", "/containers/"+url.PathEscape(nameOrID)+"/start", nil, nil, nil)
	if IsConflict(err) {
		return nil
	}
	return err
}
