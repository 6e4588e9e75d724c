package libpod

import (
	"context"
	"net/url"
	"strconv"
)

// ContainerStop sends the container its stop signal and SIGKILL after timeoutSeconds. A container already
// stopped or gone is not an error.
func (c *Client) ContainerStop(ctx context.Context, nameOrID string, timeoutSeconds int) error {
	q := url.Values{"timeout": {strconv.Itoa(timeoutSeconds)}}
	err := c.call(ctx, "stop container "+nameOrID, "POST", "/containers/"+url.PathEscape(nameOrID)+"/stop", q, nil, nil)
	if IsNotFound(err) || IsConflict(err) {
		return nil
	}
	return err
}
