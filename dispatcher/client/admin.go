package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// The admin routes (/api/v1), served beside the interLink ones behind the same access control.

// PodSummary is one pod as the dispatcher's journal and last known status hold it.
type PodSummary struct {
	UID        string            `json:"uid"`
	Namespace  string            `json:"namespace"`
	Name       string            `json:"name"`
	Backend    string            `json:"backend"`
	RemoteID   string            `json:"remote_id"`
	Created    time.Time         `json:"created"`
	Phase      string            `json:"phase"` // Pending|Running|Succeeded|Failed|Unknown, "" when no status is known yet
	StatusTime time.Time         `json:"status_time,omitzero"`
	Ready      int               `json:"ready"`
	Containers int               `json:"containers"`
	Restarts   int               `json:"restarts"`
	Detail     []ContainerDetail `json:"containers_detail"`
}

// ContainerDetail is one container's last known state.
type ContainerDetail struct {
	Name         string `json:"name"`
	Init         bool   `json:"init"`
	State        string `json:"state"` // waiting|running|terminated
	Reason       string `json:"reason,omitempty"`
	Message      string `json:"message,omitempty"`
	ExitCode     *int   `json:"exit_code,omitempty"`
	Ready        bool   `json:"ready"`
	RestartCount int    `json:"restart_count"`
}

// PodDetail is one pod's summary, refreshed, with the status its backend answers now.
type PodDetail struct {
	Pod    PodSummary           `json:"pod"`
	Status *interlink.PodStatus `json:"status,omitempty"`
}

// Backend is one configured backend and its health.
type Backend struct {
	Name     string   `json:"name"`
	State    string   `json:"state"` // up|degraded|down|disabled|misconfigured
	Reason   string   `json:"reason,omitempty"`
	Version  string   `json:"version,omitempty"`
	Engine   string   `json:"engine,omitempty"`
	Capacity Capacity `json:"capacity"`
	Pods     int      `json:"pods"`
	Restarts int      `json:"restarts"`
}

// Capacity is what a backend can run, as Kubernetes quantities; "" is unknown.
type Capacity struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
	Pods   string `json:"pods,omitempty"`
	GPUs   string `json:"gpus,omitempty"`
}

// PodFilter narrows ListPods; empty fields match every pod.
type PodFilter struct {
	Backend, Namespace, Name, Phase string
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
func (c *Client) ListPods(ctx context.Context, f PodFilter) ([]PodSummary, error) {
	q := url.Values{}
	for k, v := range map[string]string{"backend": f.Backend, "namespace": f.Namespace, "name": f.Name, "phase": f.Phase} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := "/api/v1/pods"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out struct {
		Pods []PodSummary `json:"pods"`
	}
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
func (c *Client) GetPod(ctx context.Context, uid string) (PodDetail, error) {
	var out PodDetail
	err := c.admin(ctx, "/api/v1/pods/"+url.PathEscape(uid), &out)
	return out, err
}

// Backends is GET /api/v1/backends, in config order.
func (c *Client) Backends(ctx context.Context) ([]Backend, error) {
	var out struct {
		Backends []Backend `json:"backends"`
	}
	err := c.admin(ctx, "/api/v1/backends", &out)
	return out.Backends, err
}

// FindPod is the one pod called name (in namespace, or in any namespace when namespace is ""). It fails
// with a sentence when there is none, or several in different namespaces.
func (c *Client) FindPod(ctx context.Context, namespace, name string) (PodSummary, error) {
	pods, err := c.ListPods(ctx, PodFilter{Namespace: namespace, Name: name})
	if err != nil {
		return PodSummary{}, err
	}
	switch len(pods) {
	case 0:
		where := "in any namespace"
		if namespace != "" {
			where = "in namespace " + namespace
		}
		return PodSummary{}, &APIError{Code: http.StatusNotFound, Message: fmt.Sprintf("the dispatcher at %s knows no pod called %s %s", c.display, name, where)}
	case 1:
		return pods[0], nil
	}
	var nss []string
	for _, p := range pods {
		nss = append(nss, p.Namespace)
	}
	return PodSummary{}, fmt.Errorf("pods called %s are in several namespaces (%s); choose one with -n", name, strings.Join(nss, ", "))
}
