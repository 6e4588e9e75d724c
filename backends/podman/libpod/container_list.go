package libpod

import (
	"context"
	"net/url"
)

// ContainerList lists every container (running or not, infra containers included) carrying every given label.
func (c *Client) ContainerList(ctx context.Context, labels map[string]string) ([]ListContainer, error) {
	q := url.Values{"all": {"true"}}
	if len(labels) > 0 {
		q.Set("filters", labelFilters(labels))
	}
	var out []ListContainer
	if err := c.list(ctx, "list containers", "/containers/json", q, &out); err != nil {
		return nil, err
	}
	return keepLabelled(out, func(x *ListContainer) map[string]string { return x.Labels }, labels), nil
}
