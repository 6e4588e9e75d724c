package libpod

import (
	"context"
	"net/url"
	"strconv"
)

// PodStop stops every container of a pod: each gets its stop signal, then SIGKILL after timeoutSeconds,
// which must be at least 1: Podman 4.3 reads t=0 as "unset" and waits each container's own stop timeout
// (use PodKill to stop at once). A pod already gone or already stopped is not an error.
func (c *Client) PodStop(ctx context.Context, nameOrID string, timeoutSeconds int) error {
	q := url.Values{"t": {strconv.Itoa(timeoutSeconds)}}
	err := c.call(ctx, "stop pod "+nameOrID, "POST", "/pods/"+url.PathEscape(nameOrID)+"/stop", q, nil, nil)
	if IsNotFound(err) || IsConflict(err) {
		return nil
	}
	return err
}
