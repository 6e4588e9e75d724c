package libpod

import (
	"context"
	"net/url"
)

// ListVolume is one volume of a list query.
type ListVolume struct {
	Name   string            `json:"Name"`
	Labels map[string]string `json:"Labels"`
}

// VolumeList lists the volumes carrying every given label.
func (c *Client) VolumeList(ctx context.Context, labels map[string]string) ([]ListVolume, error) {
	q := url.Values{}
	if len(labels) > 0 {
		q.Set("filters", labelFilters(labels))
	}
	var out []ListVolume
	err := c.call(ctx, "list volumes", "GET", "/volumes/json", q, nil, &out)
	return out, err
}
