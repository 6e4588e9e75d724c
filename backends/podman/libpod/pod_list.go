package libpod

import (
	"context"
	"net/url"
)

// PodList lists the pods carrying every given label ("key": "value", or "key": "" for presence).
func (c *Client) PodList(ctx context.Context, labels map[string]string) ([]ListPod, error) {
	q := url.Values{}
	if len(labels) > 0 {
		q.Set("filters", labelFilters(labels))
	}
	var out []ListPod
	err := c.call(ctx, "list pods", "GET", "/pods/json", q, nil, &out)
	return out, err
}
