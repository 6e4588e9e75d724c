package podman

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// engineCalls is the backend's count of engine calls so far, every operation together.
func engineCalls(t *testing.T, b *Backend) float64 {
	t.Helper()
	mfs, err := b.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "interlink_backend_engine_calls_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// Polled pod by pod as the virtual kubelet polls, the backend answers from its live view: at most one engine
// call per twenty single-pod statuses, counted by the backend's own counter.
func TestSinglePodStatusCallsPerStatus(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	const n, rounds = 8, 40
	var pods []*v1.Pod
	for i := 0; i < n; i++ {
		p := newPod(fmt.Sprintf("poll-%d", i), busybox("main", "exec sleep 300"))
		create(t, b, p)
		pods = append(pods, p)
	}
	for _, p := range pods {
		waitFor(t, b, p, 2*time.Minute, "the pod to run", phaseIs(v1.PodRunning))
		waitLaunchDone(t, b, p, time.Minute)
	}
	// The view follows the event stream: without it the bound would come from listing every 2 s instead.
	b.view.mu.Lock()
	connected := !b.view.since.IsZero()
	b.view.mu.Unlock()
	if !connected {
		t.Fatal("the view's event stream is not connected")
	}
	before := engineCalls(t, b)
	for r := 0; r < rounds; r++ {
		for _, p := range pods {
			if st := status(t, b, p); phaseIs(v1.PodRunning)(st) == false {
				t.Fatalf("pod %s: %s, want running", p.Name, describe(st))
			}
		}
	}
	calls := engineCalls(t, b) - before
	perStatus := calls / float64(n*rounds)
	t.Logf("%d single-pod statuses of %d running pods made %.0f engine calls (%.4f per status)", n*rounds, n, calls, perStatus)
	if perStatus > 0.05 {
		t.Errorf("%.4f engine calls per single-pod status, want at most 0.05", perStatus)
	}
}
