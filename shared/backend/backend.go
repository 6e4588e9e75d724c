// Package backend is the contract between the dispatcher and its backends: the Go interface every backend
// implements and the dispatcher holds, its gRPC form (proto/), the go-plugin glue (plugin.go) and the versioned
// handshake (versions.go). Neither side sees gRPC: a backend author implements Backend and calls Serve from
// main; the dispatcher calls Launch and holds the Backend it returns.
package backend

import (
	"context"
	"encoding/json"
	"io"
	"time"

	dto "github.com/prometheus/client_model/go"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// Backend runs Kubernetes pods on one kind of resource. Every method is safe for concurrent use. Methods
// return *Error (see errors.go) so that the dispatcher can tell invalid input from an unavailable engine.
// A pod UID of a shape shared/pod.ValidPodUID refuses is invalid input (KindInvalid, naming metadata.uid)
// on every method that is given one: Create, Delete, Status (the whole batch) and Logs.
type Backend interface {
	// Describe names the backend and declares the pod features it honours.
	Describe(ctx context.Context) (Description, error)
	// Capacity reports the resources and taints the backend offers, for interLink's ping. The dispatcher also
	// calls it every supervision.health_interval as the engine's health check, so it must ask the engine
	// (cheaply) every time: an error says the engine does not answer.
	Capacity(ctx context.Context) (Capacity, error)
	// Create validates the pod synchronously (an invalid pod is an ErrInvalid and creates nothing), records
	// it, and returns its remote id; pulling images and starting containers may go on after it returns, and
	// their failures show in Status. Create is idempotent on the pod UID: a second call returns the same
	// remote id and starts nothing twice.
	Create(ctx context.Context, req CreateRequest) (CreateResult, error)
	// Delete stops the pod gracefully (SIGTERM, then SIGKILL after the grace period) and removes everything
	// the backend made for it. Deleting an unknown pod, or one already deleted, succeeds. The request's pod
	// may hold no more than its metadata.uid (the dispatcher accepts such a delete), beside RemoteID.
	Delete(ctx context.Context, req DeleteRequest) error
	// Status answers for a batch of pods in one call: one PodStatus per pod, in the order asked, each with one
	// container status per spec container (init containers in InitContainers). A pod the backend does not know
	// gets terminated statuses with reason NotFound; it never fails the whole batch. A pod whose engine
	// objects are gone (removed behind the backend's back) reads as terminated, never as its last state.
	Status(ctx context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error)
	// Logs writes one container's log to w, honouring every option of req.Opts. With Follow it keeps writing
	// until the container ends or ctx is cancelled.
	Logs(ctx context.Context, req LogRequest, w io.Writer) error
	// List returns every pod the backend manages, found from the engine itself (labels, working
	// directories), so that a restarted dispatcher or backend finds them again.
	List(ctx context.Context) ([]PodRecord, error)
	// Metrics returns the backend's own metrics (engine call latencies, squeue calls...), which the
	// dispatcher exposes on its /metrics with a backend label. A backend without any returns nil.
	Metrics(ctx context.Context) ([]*dto.MetricFamily, error)
}

// Env is what a backend process is given at start by the dispatcher that launched it.
type Env struct {
	Name     string          // the backend's name in the dispatcher's config, e.g. "docker" or "gpu-slurm"
	Instance string          // the dispatcher instance id: every object the backend makes is labelled with it
	Config   json.RawMessage // the backend's own config section, as JSON ({} when absent)
	DataDir  string          // a directory the backend owns for its files (pod directories, state)
	// Check is set when `interlink-dispatcher check` launches the backend only to see it start, describe
	// itself and report its capacity, possibly beside a dispatcher running on the same config. DataDir is
	// then a scratch directory, and the backend must act on no pod it would otherwise find (its own config
	// may name a pod directory): no recovery, no restart, no clean-up.
	Check bool `json:",omitempty"`
}

// Factory builds a backend from its Env. An error is a sentence naming the config key at fault.
type Factory func(ctx context.Context, env Env) (Backend, error)

// Description is what Describe returns.
type Description struct {
	Name            string       // the backend's kind, e.g. "docker"
	Version         string       // the backend binary's version
	ProtocolVersion int          // the contract version it serves (see versions.go)
	Engine          string       // the engine it drives and its version, e.g. "Docker Engine 20.10.24"
	Capabilities    Capabilities // which pod features it honours
}

// Capabilities declare which pod features a backend honours. The dispatcher refuses (422) a pod that uses a
// feature outside them, naming the field path; see shared/pod.Validate.
type Capabilities struct {
	// VolumeKinds are the pod volume sources honoured, by their JSON name: "configMap", "secret",
	// "projected", "downwardAPI", "emptyDir", "hostPath".
	VolumeKinds []string
	// Features are named pod features beyond the always-supported core (image, command, args, env,
	// workingDir, resources cpu/memory, restartPolicy); see the Feature* constants.
	Features []string
	// ExtendedResources are the resource names beyond cpu and memory honoured in limits/requests, e.g.
	// "nvidia.com/gpu".
	ExtendedResources []string
}

// Named pod features a backend may declare in Capabilities.Features.
const (
	FeatureInitContainers         = "initContainers"
	FeatureMultipleContainers     = "multipleContainers"
	FeatureSharedLocalhost        = "sharedLocalhost"        // containers of a pod reach each other on localhost
	FeaturePorts                  = "ports"                  // containerPort declarations
	FeatureEmptyDirMemory         = "emptyDir.medium.Memory" // tmpfs emptyDirs
	FeatureEmptyDirSizeLimit      = "emptyDir.sizeLimit"     // enforced size limits
	FeatureSubPath                = "volumeMounts.subPath"   // subPath mounts
	FeatureRunAsUser              = "securityContext.runAsUser"
	FeatureRunAsGroup             = "securityContext.runAsGroup"
	FeaturePrivileged             = "securityContext.privileged"
	FeatureReadOnlyRootFS         = "securityContext.readOnlyRootFilesystem"
	FeatureCapabilities           = "securityContext.capabilities"
	FeatureImagePullPolicy        = "imagePullPolicy" // Always/IfNotPresent/Never honoured
	FeatureRestartPolicyAlways    = "restartPolicy.Always"
	FeatureRestartPolicyOnFailure = "restartPolicy.OnFailure"
	FeatureTerminationGrace       = "terminationGracePeriodSeconds"
	FeatureHostNetwork            = "hostNetwork"
	FeatureProbes                 = "probes" // liveness/readiness/startup probes
	FeatureLifecycleHooks         = "lifecycle"
	FeatureStdin                  = "stdin" // stdin/tty
	// FeatureTerminationMessage: the file at terminationMessagePath and FallbackToLogsOnError give the
	// terminated state's message, as the kubelet makes it (pod.TerminationMessage).
	FeatureTerminationMessage = "terminationMessage"
)

// Capacity is what a backend offers. A nil field means "unknown" and is left out of the ping.
type Capacity struct {
	CPUMilli     *int64           // CPU in millicores
	MemoryBytes  *int64           // memory in bytes
	Pods         *int64           // how many pods it accepts
	Accelerators map[string]int64 // extended resource name → count available
	Taints       []v1.Taint
}

// CreateRequest is one pod to create, as interLink sent it.
type CreateRequest struct {
	Pod *v1.Pod
	// Containers carry the configMaps, secrets and projected volume maps each container mounts.
	Containers []interlink.RetrievedContainer
	// JobScript is interLink's rendered job script, when it rendered one.
	JobScript string
}

// CreateResult is what Create returns.
type CreateResult struct {
	RemoteID string // the id of the pod on the engine: a container or pod id, a job id
}

// DeleteRequest is one pod to delete.
type DeleteRequest struct {
	Pod         *v1.Pod
	RemoteID    string        // the id Create returned, when known
	GracePeriod time.Duration // time between SIGTERM and SIGKILL
}

// LogRequest is one container's log to read.
type LogRequest struct {
	interlink.LogStruct
	RemoteID string // the id Create returned, when known
}

// PodRecord is one pod a backend manages, as List finds it on the engine.
type PodRecord struct {
	UID       string
	Namespace string
	Name      string
	RemoteID  string
	Phase     v1.PodPhase // Pending, Running, Succeeded, Failed, or Unknown
	Created   time.Time
}
