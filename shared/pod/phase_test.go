package pod

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

func TestNextPhase(t *testing.T) {
	// Statuses as the backends build them.
	ctr := func(name string) *v1.Container { return &v1.Container{Name: name} }
	waiting := func(name string) v1.ContainerStatus { return Waiting(ctr(name), ReasonContainerCreating, "", 0) }
	running := func(name string) v1.ContainerStatus { return Running(ctr(name), time.Now(), 0) }
	exited := func(name string, code int32) v1.ContainerStatus {
		return Terminated(ctr(name), Termination{ExitCode: code}, 0)
	}
	empty := func(name string) v1.ContainerStatus { return v1.ContainerStatus{Name: name} }
	podIn := func(phase v1.PodPhase) *v1.Pod {
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
		{"one waiting", podIn(""), st(nil, waiting("a")), v1.PodPending},
		{"empty state", podIn(""), st(nil, empty("a")), v1.PodPending},
		{"any running", podIn(""), st(nil, running("a"), exited("b", 0)), v1.PodRunning},
		{"running beside a failed one", podIn(""), st(nil, running("a"), exited("b", 1)), v1.PodRunning},
		{"running beside a waiting one", podIn(""), st(nil, waiting("a"), running("b")), v1.PodRunning},
		{"all exited 0", podIn(""), st(nil, exited("a", 0), exited("b", 0)), v1.PodSucceeded},
		{"one exited 3", podIn(""), st(nil, exited("a", 0), exited("b", 3)), v1.PodFailed},
		{"empty list counts as all terminated", podIn(""), st(nil), v1.PodSucceeded},
		{"waiting after running leaves it Running", podIn(v1.PodRunning), st(nil, waiting("a")), v1.PodRunning},
		{"terminated beside waiting leaves it", podIn(v1.PodRunning), st(nil, exited("a", 0), waiting("b")), v1.PodRunning},
		{"Succeeded is final", podIn(v1.PodSucceeded), st(nil, running("a")), v1.PodSucceeded},
		{"Failed is final", podIn(v1.PodFailed), st(nil, exited("a", 0)), v1.PodFailed},
		{"another pod's status changes nothing", &v1.Pod{ObjectMeta: podIn("").ObjectMeta}, interlink.PodStatus{PodUID: "u2",
			Containers: []v1.ContainerStatus{running("a")}}, v1.PodPending},
		{"nil pod", nil, st(nil, running("a")), v1.PodRunning},
		{"init running holds Pending", podIn(""), st([]v1.ContainerStatus{running("i")}, running("a")), v1.PodPending},
		{"init waiting holds Pending", podIn(""), st([]v1.ContainerStatus{waiting("i")}, exited("a", 0)), v1.PodPending},
		{"init done, container running", podIn(""), st([]v1.ContainerStatus{exited("i", 0)}, running("a")), v1.PodRunning},
		{"init done, all done", podIn(""), st([]v1.ContainerStatus{exited("i", 0)}, exited("a", 0)), v1.PodSucceeded},
		{"init failed, containers terminated", podIn(""), st([]v1.ContainerStatus{exited("i", 4)}, exited("a", 0)), v1.PodFailed},
		{"init failed, containers waiting: no change", podIn(""), st([]v1.ContainerStatus{exited("i", 4)}, waiting("a")), v1.PodPending},
		{"init failed, next init waiting: no change", podIn(""),
			st([]v1.ContainerStatus{exited("i", 4), waiting("j")}, exited("a", 1)), v1.PodPending},
		{"init failed, next init and containers terminated", podIn(""),
			st([]v1.ContainerStatus{exited("i", 4), exited("j", 1)}, exited("a", 1)), v1.PodFailed},
		{"init with empty state does not hold", podIn(""), st([]v1.ContainerStatus{empty("i")}, running("a")), v1.PodRunning},
	} {
		if got := NextPhase(tc.pod, tc.st); got != tc.phase {
			t.Errorf("%s: NextPhase = %s, want %s", tc.name, got, tc.phase)
		}
	}
}
