package libpod

import "context"

// VolumeSpec is the body of a volume create.
type VolumeSpec struct {
	Name    string            `json:"Name"`
	Driver  string            `json:"Driver,omitempty"`
	Labels  map[string]string `json:"Labels,omitempty"`
	Options map[string]string `json:"Options,omitempty"` // for the local driver: type, device, o
}

// VolumeCreate creates a named volume and returns its name.
func (c *Client) VolumeCreate(ctx context.Context, spec VolumeSpec) (string, error) {
	var out struct {
		Name string `json:"Name"`
	}
	err := c.call(ctx, "create volume "+spec.Name, "POST", "/volumes/create", nil, spec, &out)
	return out.Name, err
}
