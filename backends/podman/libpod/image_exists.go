package libpod

import (
	"context"
	"net/url"
)

// ImageExists reports whether the image is in the service's local store.
func (c *Client) ImageExists(ctx context.Context, reference string) (bool, error) {
	err := c.call(ctx, "check image "+reference, "GET", "/images/"+url.PathEscape(reference)+"/exists", nil, nil, nil)
	if IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
