package kubernetes

import (
	"context"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// nowhere is a node selector no node of the lab has: pods stay Pending (Unschedulable) and cost the lab's
// two cores nothing but their records.
var nowhere = map[string]any{"node_selector": map[string]string{"interlink.eu/bench": "no-such-node"}}

// pendingPods creates n remote pods that are never scheduled, deleted when the test ends, and waits until
// the watch has every one.
func pendingPods(tb testing.TB, b *Backend, n int) []*v1.Pod {
	tb.Helper()
	pods := make([]*v1.Pod, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range pods {
		pods[i] = conformance.NewPod("bench", conformance.ShellContainer("main", "true"))
		wg.Add(1)
		go func(p *v1.Pod) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := b.Create(ctx, conformance.NewCreateRequest(p, conformance.Objects{})); err != nil {
				errs <- err
			}
		}(pods[i])
	}
	wg.Wait()
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, p := range pods {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				if err := b.Delete(ctx, backend.DeleteRequest{Pod: p, GracePeriod: time.Second}); err != nil {
					tb.Errorf("cleanup: %v", err)
				}
			}()
		}
		wg.Wait()
	})
	close(errs)
	for err := range errs {
		tb.Fatalf("Create: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for _, p := range pods {
		for {
			if rp, _ := b.cached(string(p.UID), ""); rp != nil {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("the watch has not shown pod %s after a minute", p.UID)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return pods
}

// statusOneByOne asks the status of each pod in its own call, as the virtual kubelet's poll does, and
// checks each answer.
func statusOneByOne(tb testing.TB, b *Backend, pods []*v1.Pod) {
	tb.Helper()
	for _, p := range pods {
		sts, err := b.Status(context.Background(), []*v1.Pod{p})
		if err != nil {
			tb.Fatalf("Status: %v", err)
		}
		if len(sts) != 1 || sts[0].PodUID != string(p.UID) || sts[0].Containers[0].State.Waiting == nil {
			tb.Fatalf("status of pending pod %s: %+v", p.UID, sts)
		}
	}
}

// TestStatusCostsNoRequest: the status of 400 remote pods, one call each, sends nothing to the remote API
// server; the watch answers.
func TestStatusCostsNoRequest(t *testing.T) {
	t.Parallel()
	b, _ := newBackend(t, nowhere)
	pods := pendingPods(t, b, 400)
	before := b.APIRequests()
	start := time.Now()
	statusOneByOne(t, b, pods)
	took := time.Since(start)
	if n := b.APIRequests() - before; n != 0 {
		t.Errorf("%d requests to the remote API server for 400 status calls, want 0", n)
	}
	t.Logf("400 status calls, one pod each: no request to the remote API server, %v", took)
}

// BenchmarkStatus400 asks the status of 400 remote pods one call each per iteration, and reports the
// requests sent to the remote API server per call (0: the watch serves them).
func BenchmarkStatus400(b *testing.B) {
	be, _ := newBackend(b, nowhere)
	pods := pendingPods(b, be, 400)
	before := be.APIRequests()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		statusOneByOne(b, be, pods)
	}
	b.StopTimer()
	b.ReportMetric(float64(be.APIRequests()-before)/float64(b.N*len(pods)), "requests/status")
	if n := be.APIRequests() - before; n != 0 {
		b.Errorf("%d requests to the remote API server for %d status calls, want 0", n, b.N*len(pods))
	}
}
