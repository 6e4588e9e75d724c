package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/adminapi"
)

// The admin routes (/api/v1), served beside the interLink ones behind the same access control.

// PodFilter narrows ListPods; empty fields match every pod.
type PodFilter struct {
	Backend, Namespace, Name string
	Phase                    v1.PodPhase
}

// admin calls an admin route, turning the dispatcher's answer for an unknown route into NoAdminAPIError.
func (c *Client) admin(ctx context.Context, path string, out any) error {
	raw, err := c.call(ctx, http.MethodGet, path, nil, "", out)
	var ae *APIError
	if errors.As(err, &ae) && (ae.Code == http.StatusNotFound || ae.Code == http.StatusMethodNotAllowed) &&
		strings.Contains(string(raw), "is not an interLink plugin endpoint") {
		return &NoAdminAPIError{Server: c.display}
	}
	return err
}

// ListPods is GET /api/v1/pods, sorted by namespace and name.
func (c *Client) ListPods(ctx context.Context, f PodFilter) ([]adminapi.PodSummary, error) {
	q := url.Values{}
	for k, v := range map[string]string{"backend": f.Backend, "namespace": f.Namespace, "name": f.Name, "phase": string(f.Phase)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/api/v1/pods"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out adminapi.PodList
	if err := c.admin(ctx, path, &out); err != nil {
		return nil, err
	}
	sort.SliceStable(out.Pods, func(i, j int) bool {
		a, b := out.Pods[i], out.Pods[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out.Pods, nil
}

// GetPod is GET /api/v1/pods/{uid}.
func (c *Client) GetPod(ctx context.Context, uid string) (adminapi.PodDetail, error) {
	var out adminapi.PodDetail
	err := c.admin(ctx, "/api/v1/pods/"+url.PathEscape(uid), &out)
	return out, err
}

// Backends is GET /api/v1/backends, in config order.
func (c *Client) Backends(ctx context.Context) ([]adminapi.Backend, error) {
	var out adminapi.BackendList
	err := c.admin(ctx, "/api/v1/backends", &out)
	return out.Backends, err
}

// FindPod is the one pod called name (in namespace, or in any namespace when namespace is ""). It fails
// with a sentence when there is none, or several in different namespaces.
func (c *Client) FindPod(ctx context.Context, namespace, name string) (adminapi.PodSummary, error) {
	pods, err := c.ListPods(ctx, PodFilter{Namespace: namespace, Name: name})
	if err != nil {
		return adminapi.PodSummary{}, err
	}
	switch len(pods) {
	case 0:
		where := "in any namespace"
		if namespace != "" {
			where = "in namespace " + namespace
		}
		return adminapi.PodSummary{}, &APIError{Code: http.StatusNotFound, Message: fmt.Sprintf("the dispatcher at %s knows no pod called %s %s", c.display, name, where)}
	case 1:
		return pods[0], nil
	}
	var nss []string
	for _, p := range pods {
		nss = append(nss, p.Namespace)
	}
	return adminapi.PodSummary{}, fmt.Errorf("pods called %s are in several namespaces (%s); choose one with -n", name, strings.Join(nss, ", "))
}
