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
	err := c.call(ctx, "list containers", "GET", "/containers/json", q, nil, &out)
	return out, err
}
