package podman

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// calls counts the backend's calls to one libpod route so far.
func calls(t *testing.T, b *Backend, method, route string) uint64 {
	t.Helper()
	mfs, err := b.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != "interlink_backend_podman_engine_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var gotMethod, gotRoute string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "method":
					gotMethod = l.GetValue()
				case "route":
					gotRoute = l.GetValue()
				}
			}
			if gotMethod == method && gotRoute == route {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// Status of a batch answers from the live view: unchanged containers cost no list and no inspect, whatever
// the number of calls.
func TestStatusBatchFromTheView(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	var pods []*v1.Pod
	for _, name := range []string{"batch-a", "batch-b", "batch-c"} {
		p := newPod(name, busybox("main", "exec sleep 300"), busybox("side", "exec sleep 300"))
		p.Spec.RestartPolicy = v1.RestartPolicyAlways
		create(t, b, p)
		pods = append(pods, p)
	}
	unknown := newPod("batch-unknown", busybox("main", "true"))
	asked := append(pods, unknown)
	for _, p := range pods {
		waitFor(t, b, p, time.Minute, "the pod to run", phaseIs(v1.PodRunning))
		waitLaunchDone(t, b, p, time.Minute) // its own engine calls are over
	}
	if _, err := b.Status(context.Background(), asked); err != nil { // the first look inspects
		t.Fatal(err)
	}

	// Counted over many calls: the view's periodic resync may list once meanwhile; a list per call would be
	// n lists.
	const n = 20
	lists, inspects := calls(t, b, "GET", "/containers/json"), calls(t, b, "GET", "/containers/{name}/json")
	var st []interlink.PodStatus
	for i := 0; i < n; i++ {
		var err error
		if st, err = b.Status(context.Background(), asked); err != nil {
			t.Fatal(err)
		}
	}
	if got := calls(t, b, "GET", "/containers/json") - lists; got > 2 {
		t.Errorf("%d Status calls for %d pods made %d container list queries, want at most the view's resyncs (2)", n, len(asked), got)
	}
	if got := calls(t, b, "GET", "/containers/{name}/json") - inspects; got > uint64(len(pods)) {
		t.Errorf("%d Status calls of running containers already looked at made %d inspects, want none", n, got)
	}
	if len(st) != len(asked) {
		t.Fatalf("%d statuses for %d pods", len(st), len(asked))
	}
	for i, p := range pods {
		if st[i].PodUID != string(p.UID) || pod.Phase(st[i]) != v1.PodRunning || len(st[i].Containers) != 2 {
			t.Errorf("status %d: %s (uid %s), want pod %s running with 2 containers", i, describe(st[i]), st[i].PodUID, p.Name)
		}
	}
	if c := st[3].Containers[0].State.Terminated; c == nil || c.Reason != pod.ReasonNotFound {
		t.Errorf("unknown pod: %s, want NotFound", describe(st[3]))
	}
}
