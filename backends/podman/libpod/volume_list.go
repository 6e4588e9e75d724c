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
	if err := c.list(ctx, "list volumes", "/volumes/json", q, &out); err != nil {
		return nil, err
	}
	return keepLabelled(out, func(x *ListVolume) map[string]string { return x.Labels }, labels), nil
}
