package pod

import (
	"math"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

func TestNanoCPUsExact(t *testing.T) {
	for in, want := range map[string]int64{"500m": 500_000_000, "0.5": 500_000_000, "1": 1_000_000_000,
		"250m": 250_000_000, "1.5": 1_500_000_000, "1m": 1_000_000, "3": 3_000_000_000} {
		if got := NanoCPUs(resource.MustParse(in)); got != want {
			t.Errorf("NanoCPUs(%s) = %d, want %d", in, got, want)
		}
	}
	if CPUShares(500_000_000) != 512 || CPUShares(1_000_000) != 2 || CPUShares(0) != 0 {
		t.Errorf("CPUShares: %d %d", CPUShares(500_000_000), CPUShares(1_000_000))
	}
	c := &v1.Container{Resources: v1.ResourceRequirements{
		Limits:   v1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("64Mi"), "nvidia.com/gpu": resource.MustParse("2")},
		Requests: v1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("32Mi")}}}
	r := ContainerResources(c)
	if r.CPULimitNano != 500_000_000 || r.CPURequestNano != 100_000_000 || r.MemoryLimitBytes != 64<<20 ||
		r.MemoryRequestBytes != 32<<20 || r.Extended["nvidia.com/gpu"] != 2 {
		t.Errorf("resources = %+v", r)
	}
	p := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{*c, *c}, InitContainers: []v1.Container{{Resources: v1.ResourceRequirements{
		Limits: v1.ResourceList{"cpu": resource.MustParse("2")}}}}}}
	if pr := PodResources(p); pr.CPULimitNano != 2_000_000_000 || pr.MemoryLimitBytes != 128<<20 || pr.Extended["nvidia.com/gpu"] != 4 {
		t.Errorf("pod resources = %+v", pr)
	}
}

func TestPullPolicyDefault(t *testing.T) {
	for image, want := range map[string]v1.PullPolicy{
		"busybox": v1.PullAlways, "busybox:latest": v1.PullAlways, "busybox:1.36": v1.PullIfNotPresent,
		"127.0.0.1:5000/busybox": v1.PullAlways, "127.0.0.1:5000/busybox:1.0": v1.PullIfNotPresent,
		"busybox@sha256:abcd": v1.PullIfNotPresent, "python:3-slim": v1.PullIfNotPresent,
	} {
		if got := PullPolicy(&v1.Container{Image: image}); got != want {
			t.Errorf("%s: %s, want %s", image, got, want)
		}
	}
	if PullPolicy(&v1.Container{Image: "busybox", ImagePullPolicy: v1.PullNever}) != v1.PullNever {
		t.Error("an explicit policy must win")
	}
}

func TestGracePeriod(t *testing.T) {
	p := &v1.Pod{}
	if GracePeriod(p) != 30*time.Second {
		t.Error("default")
	}
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(5))
	if GracePeriod(p) != 5*time.Second {
		t.Error("spec")
	}
	p.DeletionGracePeriodSeconds = ptr(int64(0))
	if GracePeriod(p) != 0 {
		t.Error("deletion grace period wins")
	}
	// time.Duration(n)*time.Second overflowed for these: the result went negative.
	for _, n := range []int64{9223372036, 1 << 62, math.MaxInt64} {
		p.DeletionGracePeriodSeconds = ptr(n)
		if g := GracePeriod(p); g < 290*365*24*time.Hour {
			t.Errorf("grace period of %d s is %s", n, g)
		}
	}
	p.DeletionGracePeriodSeconds = ptr(int64(-3))
	if g := GracePeriod(p); g != time.Second {
		t.Errorf("a negative grace period is %s, want 1s as Kubernetes reads it", g)
	}
}

func TestStatusHelpers(t *testing.T) {
	p := defaultPod(t)
	p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox"}}
	st := NotFoundStatus(p, "")
	if st.PodUID != string(p.UID) || len(st.Containers) != 1 || len(st.InitContainers) != 1 {
		t.Fatalf("NotFoundStatus = %+v", st)
	}
	for _, s := range append(st.Containers, st.InitContainers...) {
		if s.State.Terminated == nil || s.State.Terminated.Reason != ReasonNotFound || s.State.Terminated.ExitCode == 0 || s.Name == "" {
			t.Errorf("not-found container status = %+v", s)
		}
	}
	if Phase(st) != v1.PodFailed {
		t.Errorf("NotFound phase = %s", Phase(st))
	}
	init, main := &p.Spec.InitContainers[0], &p.Spec.Containers[0]
	now := time.Now()
	done := Terminated(init, Termination{ExitCode: 0, StartedAt: now, FinishedAt: now}, 0)
	if done.State.Terminated.Reason != ReasonCompleted {
		t.Errorf("reason %q", done.State.Terminated.Reason)
	}
	cases := []struct {
		init, main v1.ContainerStatus
		want       v1.PodPhase
	}{
		{Waiting(init, ReasonContainerCreating, "", 0), Waiting(main, ReasonPodInitializing, "", 0), v1.PodPending},
		// The virtual kubelet fails the pod only once every container is terminated too (hence NotStarted).
		{Terminated(init, Termination{ExitCode: 3}, 0), Waiting(main, ReasonPodInitializing, "", 0), v1.PodPending},
		{Terminated(init, Termination{ExitCode: 3}, 0), NotStarted(main, "never ran", time.Time{}), v1.PodFailed},
		{done, Running(main, now, 0), v1.PodRunning},
		{done, Terminated(main, Termination{ExitCode: 0}, 0), v1.PodSucceeded},
		{done, Terminated(main, Termination{ExitCode: 137, OOMKilled: true}, 0), v1.PodFailed},
	}
	for i, tc := range cases {
		ps := interlink.PodStatus{InitContainers: []v1.ContainerStatus{tc.init}, Containers: []v1.ContainerStatus{tc.main}}
		if got := Phase(ps); got != tc.want {
			t.Errorf("case %d: phase %s, want %s", i, got, tc.want)
		}
	}
	oom := Terminated(main, Termination{ExitCode: 137, OOMKilled: true}, 1)
	if oom.State.Terminated.Reason != ReasonOOMKilled || oom.RestartCount != 1 {
		t.Errorf("oom = %+v", oom)
	}
	r := WithLastState(Running(main, now, 1), &Termination{ExitCode: 1})
	if !r.Ready || r.LastTerminationState.Terminated == nil || r.LastTerminationState.Terminated.Reason != ReasonError {
		t.Errorf("running with last state = %+v", r)
	}
}

// TestRunningReadiness: a running container is ready unless a readiness or startup probe gates it, and
// started unless it has a startup probe; the backend sets the probes' verdicts from the shim.
func TestRunningReadiness(t *testing.T) {
	probe := &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}
	for _, tc := range []struct {
		name           string
		c              v1.Container
		ready, started bool
	}{
		{"no probe", v1.Container{Name: "c"}, true, true},
		{"liveness only", v1.Container{Name: "c", LivenessProbe: probe}, true, true},
		{"readiness", v1.Container{Name: "c", ReadinessProbe: probe}, false, true},
		{"startup", v1.Container{Name: "c", StartupProbe: probe}, false, false},
	} {
		cs := Running(&tc.c, time.Now(), 0)
		if cs.Ready != tc.ready || cs.Started == nil || *cs.Started != tc.started {
			t.Errorf("%s: ready %v started %v, want %v and %v", tc.name, cs.Ready, cs.Started, tc.ready, tc.started)
		}
	}
}

func TestNotStartedAfterInitFailure(t *testing.T) {
	p := defaultPod(t)
	p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox"}}
	failed := []v1.ContainerStatus{Terminated(&p.Spec.InitContainers[0], Termination{ExitCode: 4}, 0)}
	if InitFailed(failed, v1.RestartPolicyNever) != "init" || InitFailed(failed, v1.RestartPolicyOnFailure) != "" {
		t.Error("InitFailed")
	}
	st := interlink.PodStatus{InitContainers: failed, Containers: []v1.ContainerStatus{NotStarted(&p.Spec.Containers[0], "never ran", time.Time{})}}
	if Phase(st) != v1.PodFailed || st.Containers[0].State.Terminated.ExitCode == 0 {
		t.Errorf("phase %s", Phase(st))
	}
}
