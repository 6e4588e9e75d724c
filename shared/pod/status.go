package pod

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// Waiting reasons and terminated reasons shared by the backends, as the kubelet spells them.
const (
	ReasonContainerCreating    = "ContainerCreating"
	ReasonPodInitializing      = "PodInitializing"
	ReasonErrImagePull         = "ErrImagePull"
	ReasonErrImageNeverPull    = "ErrImageNeverPull"
	ReasonCreateContainerError = "CreateContainerError"
	ReasonCrashLoopBackOff     = "CrashLoopBackOff"
	ReasonCompleted            = "Completed"
	ReasonError                = "Error"
	ReasonOOMKilled            = "OOMKilled"
	ReasonNotFound             = "NotFound"
	// ReasonBackendDisabled is the status of a pod whose backend the dispatcher's config no longer runs.
	ReasonBackendDisabled = "BackendDisabled"
	ReasonUnknown         = "ContainerStatusUnknown"
)

// NotFoundExitCode is the exit code reported for the containers of a pod no backend knows.
const NotFoundExitCode = 137

// Waiting returns the status of a container that is not running yet (or is waiting to restart).
func Waiting(c *v1.Container, reason, message string, restarts int32) v1.ContainerStatus {
	return v1.ContainerStatus{
		Name: c.Name, Image: c.Image, RestartCount: restarts,
		State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reason, Message: message}},
	}
}

// ProbesGateReadiness tells whether c's readiness is its probes' to give: with a readiness probe, or a
// startup probe (a container that has not started is not ready), it is not ready until they say so. The
// shim, which does not import this package, states the same rule as shim.Spec.GatesReadiness.
func ProbesGateReadiness(c *v1.Container) bool {
	return c.ReadinessProbe != nil || c.StartupProbe != nil
}

// Running returns the status of a running container. Unless its probes gate its readiness it is ready;
// otherwise it is not, until the backend sets the probes' verdict (the shim's) on the status. Likewise it
// has started unless a startup probe has yet to succeed.
func Running(c *v1.Container, startedAt time.Time, restarts int32) v1.ContainerStatus {
	started := c.StartupProbe == nil
	return v1.ContainerStatus{
		Name: c.Name, Image: c.Image, RestartCount: restarts, Ready: !ProbesGateReadiness(c), Started: &started,
		State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(startedAt)}},
	}
}

// Termination describes one finished run of a container.
type Termination struct {
	ExitCode    int32
	OOMKilled   bool
	Reason      string // when empty, TerminatedReason(ExitCode, OOMKilled)
	Message     string
	StartedAt   time.Time
	FinishedAt  time.Time
	ContainerID string // optional, e.g. "docker://<id>"
}

// State returns t as a Kubernetes terminated state.
func (t Termination) State() *v1.ContainerStateTerminated {
	reason := t.Reason
	if reason == "" {
		reason = TerminatedReason(t.ExitCode, t.OOMKilled)
	}
	return &v1.ContainerStateTerminated{
		ExitCode: t.ExitCode, Reason: reason, Message: t.Message,
		StartedAt: metav1.NewTime(t.StartedAt), FinishedAt: metav1.NewTime(t.FinishedAt),
		ContainerID: t.ContainerID,
	}
}

// Terminated returns the status of a container whose last run ended with t.
func Terminated(c *v1.Container, t Termination, restarts int32) v1.ContainerStatus {
	started := false
	return v1.ContainerStatus{
		Name: c.Name, Image: c.Image, RestartCount: restarts, Started: &started,
		State: v1.ContainerState{Terminated: t.State()},
	}
}

// NotStarted is the status of a container that will never run because its pod has finished first (an init
// container failed under a policy that does not restart it). The virtual kubelet marks a pod Failed only
// once every container is terminated, so such a container is reported terminated, as the kubelet reports
// containers of a terminal pod it has no run of: reason ContainerStatusUnknown, exit code 137. at is when the
// pod's end became certain (the failed init container's end, the eviction): a fixed time, so that repeated
// status calls answer the same status.
func NotStarted(c *v1.Container, message string, at time.Time) v1.ContainerStatus {
	return Terminated(c, Termination{ExitCode: NotFoundExitCode, Reason: ReasonUnknown, Message: message, FinishedAt: at}, 0)
}

// NotStartedAfterInit is NotStarted for a container that never ran because init container initName failed
// for good, at its end (at): the words every backend reports it in.
func NotStartedAfterInit(c *v1.Container, initName string, at time.Time) v1.ContainerStatus {
	return NotStarted(c, fmt.Sprintf("never started: init container %q failed", initName), at)
}

// EndedAt is when the named container's run ended, from its status among st, or the zero time.
func EndedAt(st []v1.ContainerStatus, name string) time.Time {
	for _, s := range st {
		if s.Name == name && s.State.Terminated != nil {
			return s.State.Terminated.FinishedAt.Time
		}
	}
	return time.Time{}
}

// InitFailed returns the name of the init container whose failure ends the pod under policy (the pod's
// restartPolicy), or "" when none has: one terminated non-zero that Never does not restart.
func InitFailed(st []v1.ContainerStatus, policy v1.RestartPolicy) string {
	if policy != v1.RestartPolicyNever {
		return ""
	}
	for _, s := range st {
		if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
			return s.Name
		}
	}
	return ""
}

// TerminatedReason is the kubelet's reason for a finished container: OOMKilled, Completed (exit 0) or Error.
func TerminatedReason(exitCode int32, oomKilled bool) string {
	switch {
	case oomKilled:
		return ReasonOOMKilled
	case exitCode == 0:
		return ReasonCompleted
	default:
		return ReasonError
	}
}

// WithLastState sets the status's lastState to a previous run (after a restart).
func WithLastState(s v1.ContainerStatus, last *Termination) v1.ContainerStatus {
	if last != nil {
		s.LastTerminationState = v1.ContainerState{Terminated: last.State()}
	}
	return s
}

// NewPodStatus returns an empty PodStatus naming p.
func NewPodStatus(p *v1.Pod, jobID string) interlink.PodStatus {
	return interlink.PodStatus{
		PodName: p.Name, PodUID: string(p.UID), PodNamespace: p.Namespace, JobID: jobID,
		Containers: []v1.ContainerStatus{}, InitContainers: []v1.ContainerStatus{},
	}
}

// WaitingStatus returns a PodStatus where every container, init ones too, waits with reason and message.
func WaitingStatus(p *v1.Pod, jobID, reason, message string) interlink.PodStatus {
	st := NewPodStatus(p, jobID)
	for i := range p.Spec.InitContainers {
		st.InitContainers = append(st.InitContainers, Waiting(&p.Spec.InitContainers[i], reason, message, 0))
	}
	for i := range p.Spec.Containers {
		st.Containers = append(st.Containers, Waiting(&p.Spec.Containers[i], reason, message, 0))
	}
	return st
}

// NotFoundStatus is the status of a pod the backend does not know: every container (init ones too)
// terminated with a non-zero exit code and reason NotFound, so that Kubernetes marks it Failed instead of
// leaving it Pending forever.
func NotFoundStatus(p *v1.Pod, message string) interlink.PodStatus {
	if message == "" {
		message = "the pod is unknown to the backend: it was never created there, or it was deleted"
	}
	return TerminatedStatus(p, ReasonNotFound, message)
}

// TerminatedStatus is NotFoundStatus with another reason: every container (init ones too) terminated with
// exit code NotFoundExitCode, reason and message, for a pod no backend will ever report on again.
func TerminatedStatus(p *v1.Pod, reason, message string) interlink.PodStatus {
	now := time.Now()
	st := NewPodStatus(p, "")
	t := Termination{ExitCode: NotFoundExitCode, Reason: reason, Message: message, FinishedAt: now}
	for i := range p.Spec.InitContainers {
		st.InitContainers = append(st.InitContainers, Terminated(&p.Spec.InitContainers[i], t, 0))
	}
	for i := range p.Spec.Containers {
		st.Containers = append(st.Containers, Terminated(&p.Spec.Containers[i], t, 0))
	}
	return st
}
