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
	if err := c.list(ctx, "list pods", "/pods/json", q, &out); err != nil {
		return nil, err
	}
	return keepLabelled(out, func(x *ListPod) map[string]string { return x.Labels }, labels), nil
}
