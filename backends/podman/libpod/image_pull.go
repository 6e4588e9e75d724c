package libpod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
)

// Pull policies of ImagePull.
const (
	PullAlways  = "always"
	PullMissing = "missing"
	PullNever   = "never"
	PullNewer   = "newer"
)

// ImagePull pulls an image by the given policy and returns its id. The service streams progress and reports
// a failure inside the stream; that failure is returned as an *Error with the registry's message.
func (c *Client) ImagePull(ctx context.Context, reference, policy string) (string, error) {
	q := url.Values{"reference": {reference}, "quiet": {"true"}}
	if policy != "" {
		q.Set("policy", policy)
	}
	op := "pull image " + reference
	resp, err := c.do(ctx, c.stream, op, "POST", "/images/pull", q, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var id string
	for {
		var m struct {
			Error  string   `json:"error"`
			ID     string   `json:"id"`
			Images []string `json:"images"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("podman %s: reading the progress: %w", op, err)
		}
		if m.Error != "" {
			return "", &Error{Status: 500, Message: m.Error, Op: op}
		}
		if m.ID != "" {
			id = m.ID
		}
	}
	if id == "" {
		return "", &Error{Status: 500, Message: "the service ended the pull without naming an image", Op: op}
	}
	return id, nil
}
