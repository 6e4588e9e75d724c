package podman

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// applyEviction: what the eviction stopped is terminated Evicted (137) with its own start time, what had not
// finished never runs, and what had finished before keeps its own ending.
func TestApplyEviction(t *testing.T) {
	t.Parallel()
	specs := []v1.Container{{Name: "running"}, {Name: "waiting"}, {Name: "done"}}
	started := time.Now().Add(-time.Minute)
	ev := &pod.Eviction{Message: "Usage of EmptyDir volume \"x\" exceeds the limit \"1Mi\".", Time: time.Now(), Killed: []string{"running"}}
	st := []v1.ContainerStatus{
		pod.Running(&specs[0], started, 0),
		pod.Waiting(&specs[1], pod.ReasonContainerCreating, "", 0),
		pod.Terminated(&specs[2], pod.Termination{ExitCode: 0, StartedAt: started, FinishedAt: started.Add(time.Second)}, 0),
	}
	applyEviction(st, ev)
	if term := st[0].State.Terminated; term == nil || term.ExitCode != 137 || term.Reason != pod.ReasonEvicted || !term.StartedAt.Time.Equal(started) {
		t.Errorf("running: %+v, want terminated 137 Evicted since its start", st[0].State)
	}
	if st[0].Ready {
		t.Error("running: still ready after the eviction")
	}
	if term := st[1].State.Terminated; term == nil || term.Reason != pod.ReasonEvicted || term.ExitCode == 0 {
		t.Errorf("waiting: %+v, want terminated Evicted non-zero", st[1].State)
	}
	if term := st[2].State.Terminated; term == nil || term.Reason != pod.ReasonCompleted || term.ExitCode != 0 {
		t.Errorf("done: %+v, want its own completion kept", st[2].State)
	}
}

func TestPreExecText(t *testing.T) {
	t.Parallel()
	p := &v1.Pod{}
	if pod.PreExecText(p) != "" {
		t.Error("a pod without the annotations has pre-exec text")
	}
	p.Annotations = map[string]string{pod.AnnotationPreExec: " echo a \n", pod.AnnotationWstunnel: "echo b", "interlink.eu/mesh-network": "disabled"}
	if got, want := pod.PreExecText(p), "# "+pod.AnnotationPreExec+"\necho a\n# "+pod.AnnotationWstunnel+"\necho b"; got != want {
		t.Errorf("PreExecText = %q, want %q", got, want)
	}
}
