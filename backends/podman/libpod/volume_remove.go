package libpod

import (
	"context"
	"net/url"
)

// VolumeRemove removes a named volume; with force, containers using it are removed too (Podman 4.3 can
// deadlock doing so, see the Podman backend's Delete); without, a volume in use is a conflict (IsConflict). A
// volume already gone is not an error.
func (c *Client) VolumeRemove(ctx context.Context, name string, force bool) error {
	q := url.Values{}
	if force {
		q.Set("force", "true")
	}
	err := c.call(ctx, "remove volume "+name, "DELETE", "/volumes/"+url.PathEscape(name), q, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}
