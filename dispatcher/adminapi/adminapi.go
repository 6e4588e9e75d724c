// Package adminapi holds the wire types of the dispatcher's admin API (/api/v1): what the dispatcher
// serves (dispatcher.Core builds them, its HTTP front writes them) and what its client reads
// (dispatcher/client, dispatcherctl). The OpenAPI document (dispatcher/openapi) describes the same bodies.
package adminapi

import (
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// PodList is the body of GET /api/v1/pods.
type PodList struct {
	Pods []PodSummary `json:"pods"`
}

// PodDetail is the body of GET /api/v1/pods/{uid}: the pod's summary, refreshed, and the status its
// backend answers now.
type PodDetail struct {
	Pod    PodSummary          `json:"pod"`
	Status interlink.PodStatus `json:"status"`
}

// BackendList is the body of GET /api/v1/backends.
type BackendList struct {
	Backends []Backend `json:"backends"`
}

// PodSummary is one journaled pod as the admin API lists it: where it runs and what its last known status
// says.
type PodSummary struct {
	UID       string    `json:"uid"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Backend   string    `json:"backend"`
	RemoteID  string    `json:"remote_id"`
	Created   time.Time `json:"created"` // when it was journaled
	// Phase is what the virtual kubelet makes of the last known status; "" while none is known.
	Phase v1.PodPhase `json:"phase"`
	// StatusTime is when the last known status was answered; nil while none is known.
	StatusTime *time.Time `json:"status_time,omitempty"`
	Ready      int        `json:"ready"`      // ready containers (init containers not counted)
	Containers int        `json:"containers"` // containers (init containers not counted)
	Restarts   int        `json:"restarts"`   // restarts of the containers, summed (init containers not counted)
	// ContainersDetail has the init containers first, then the containers, in spec order.
	ContainersDetail []ContainerSummary `json:"containers_detail"`
}

// ContainerSummary is one container of a PodSummary.
type ContainerSummary struct {
	Name     string `json:"name"`
	Init     bool   `json:"init"`
	State    string `json:"state"` // waiting, running or terminated
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	ExitCode *int32 `json:"exit_code,omitempty"` // terminated only
	Ready    bool   `json:"ready"`
	Restarts int32  `json:"restart_count"`
}

// Backend is one configured backend as the admin API lists it.
type Backend struct {
	Name   string `json:"name"`
	State  string `json:"state"`            // up, degraded, down, disabled or misconfigured
	Reason string `json:"reason,omitempty"` // why it is not up, one sentence
	// Version and Engine are what the running process described itself with.
	Version  string    `json:"version,omitempty"`
	Engine   string    `json:"engine,omitempty"`
	Capacity *Capacity `json:"capacity,omitempty"` // as its last health check reported it
	Pods     int       `json:"pods"`               // journaled pods on it
	Restarts int       `json:"restarts"`
}

// Capacity is a backend's capacity as Kubernetes quantities; what the backend does not report is left out.
// GPUs are the sum of every accelerator it reports.
type Capacity struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
	Pods   string `json:"pods,omitempty"`
	GPUs   string `json:"gpus,omitempty"`
}
