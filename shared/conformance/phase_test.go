package conformance

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

func waiting(name string) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
}

func running(name string) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}
}

func exited(name string, code int32) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}}
}

func empty(name string) v1.ContainerStatus { return v1.ContainerStatus{Name: name} }

func TestPhase(t *testing.T) {
	pod := func(phase v1.PodPhase) *v1.Pod {
		p := &v1.Pod{}
		p.UID = "u1"
		p.Status.Phase = phase
		return p
	}
	st := func(inits []v1.ContainerStatus, cs ...v1.ContainerStatus) interlink.PodStatus {
		return interlink.PodStatus{PodUID: "u1", PodName: "p", PodNamespace: "ns", InitContainers: inits, Containers: cs}
	}
	for _, tc := range []struct {
		name  string
		pod   *v1.Pod
		st    interlink.PodStatus
		phase v1.PodPhase
	}{
		{"one waiting", pod(""), st(nil, waiting("a")), v1.PodPending},
		{"empty state", pod(""), st(nil, empty("a")), v1.PodPending},
		{"any running", pod(""), st(nil, running("a"), exited("b", 0)), v1.PodRunning},
		{"running beside a failed one", pod(""), st(nil, running("a"), exited("b", 1)), v1.PodRunning},
		{"running beside a waiting one", pod(""), st(nil, waiting("a"), running("b")), v1.PodRunning},
		{"all exited 0", pod(""), st(nil, exited("a", 0), exited("b", 0)), v1.PodSucceeded},
		{"one exited 3", pod(""), st(nil, exited("a", 0), exited("b", 3)), v1.PodFailed},
		{"empty list counts as all terminated", pod(""), st(nil), v1.PodSucceeded},
		{"waiting after running leaves it Running", pod(v1.PodRunning), st(nil, waiting("a")), v1.PodRunning},
		{"terminated beside waiting leaves it", pod(v1.PodRunning), st(nil, exited("a", 0), waiting("b")), v1.PodRunning},
		{"Succeeded is final", pod(v1.PodSucceeded), st(nil, running("a")), v1.PodSucceeded},
		{"Failed is final", pod(v1.PodFailed), st(nil, exited("a", 0)), v1.PodFailed},
		{"another pod's status changes nothing", &v1.Pod{ObjectMeta: pod("").ObjectMeta}, interlink.PodStatus{PodUID: "u2",
			Containers: []v1.ContainerStatus{running("a")}}, v1.PodPending},
		{"nil pod", nil, st(nil, running("a")), v1.PodRunning},
		{"init running holds Pending", pod(""), st([]v1.ContainerStatus{running("i")}, running("a")), v1.PodPending},
		{"init waiting holds Pending", pod(""), st([]v1.ContainerStatus{waiting("i")}, exited("a", 0)), v1.PodPending},
		{"init done, container running", pod(""), st([]v1.ContainerStatus{exited("i", 0)}, running("a")), v1.PodRunning},
		{"init done, all done", pod(""), st([]v1.ContainerStatus{exited("i", 0)}, exited("a", 0)), v1.PodSucceeded},
		{"init failed, containers terminated", pod(""), st([]v1.ContainerStatus{exited("i", 4)}, exited("a", 0)), v1.PodFailed},
		{"init failed, containers waiting: no change", pod(""), st([]v1.ContainerStatus{exited("i", 4)}, waiting("a")), v1.PodPending},
		{"init failed, next init waiting: no change", pod(""),
			st([]v1.ContainerStatus{exited("i", 4), waiting("j")}, exited("a", 1)), v1.PodPending},
		{"init failed, next init and containers terminated", pod(""),
			st([]v1.ContainerStatus{exited("i", 4), exited("j", 1)}, exited("a", 1)), v1.PodFailed},
		{"init with empty state does not hold", pod(""), st([]v1.ContainerStatus{empty("i")}, running("a")), v1.PodRunning},
	} {
		if got := Phase(tc.pod, tc.st); got != tc.phase {
			t.Errorf("%s: Phase = %s, want %s", tc.name, got, tc.phase)
		}
	}
}
