package libpod

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
)

// ContainerWait blocks until the container reaches one of the conditions ("exited", "stopped", "running"...;
// none means "stopped") or ctx ends, and returns its exit code. The engine answers when the container exits:
// nothing is polled here.
func (c *Client) ContainerWait(ctx context.Context, nameOrID string, conditions ...string) (int32, error) {
	q := url.Values{}
	for _, cond := range conditions {
		q.Add("condition", cond)
	}
	op := "wait for container " + nameOrID
	resp, err := c.do(ctx, c.stream, op, "POST", "/containers/"+url.PathEscape(nameOrID)+"/wait", q, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var code int32
	if err := json.NewDecoder(resp.Body).Decode(&code); err != nil {
		return 0, fmt.Errorf("podman %s: decoding the exit code: %w", op, err)
	}
	return code, nil
}
