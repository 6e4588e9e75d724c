package libpod

import (
	"context"
	"net/url"
)

// ImageConfig is the part of an image's configuration a container inherits: what it runs by default.
type ImageConfig struct {
	Entrypoint []string `json:"Entrypoint"`
	Cmd        []string `json:"Cmd"`
	WorkingDir string   `json:"WorkingDir"`
}

// InspectImage is the part of an image inspect this client uses.
type InspectImage struct {
	ID     string      `json:"Id"`
	Config ImageConfig `json:"Config"`
}

// ImageInspect inspects an image of the service's local store.
func (c *Client) ImageInspect(ctx context.Context, reference string) (InspectImage, error) {
	var out InspectImage
	err := c.call(ctx, "inspect image "+reference, "GET", "/images/"+url.PathEscape(reference)+"/json", nil, nil, &out)
	return out, err
}
