package libpod

import (
	"context"
	"net/url"
	"slices"
)

// ContainerList lists every container (running or not, infra containers included) carrying every given label.
func (c *Client) ContainerList(ctx context.Context, labels map[string]string) ([]ListContainer, error) {
	return c.ContainerListInPods(ctx, labels, nil)
}

// ContainerListInPods is ContainerList of the containers of the named pods only (any of them; all
// containers when pods is empty). A pod name the service does not know matches nothing.
func (c *Client) ContainerListInPods(ctx context.Context, labels map[string]string, pods []string) ([]ListContainer, error) {
	q := url.Values{"all": {"true"}}
	if len(labels) > 0 || len(pods) > 0 {
		q.Set("filters", labelFilters(labels, pods))
	}
	var out []ListContainer
	if err := c.list(ctx, "list containers", "/containers/json", q, &out); err != nil {
		return nil, err
	}
	out = keepLabelled(out, func(x *ListContainer) map[string]string { return x.Labels }, labels)
	if len(pods) > 0 {
		// Checked here too: the names asked for, by name (the service also matches pod id prefixes).
		in := out[:0]
		for _, x := range out {
			if slices.Contains(pods, x.PodName) {
				in = append(in, x)
			}
		}
		out = in
	}
	return out, nil
}
