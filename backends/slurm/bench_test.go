package slurm

import (
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// heldPods creates n pods whose jobs are held in the queue (--hold), so that they stay pending and cost the
// lab's two cores nothing; they are deleted (their jobs cancelled) when the test ends.
func heldPods(tb testing.TB, b *Backend, n int) []*v1.Pod {
	tb.Helper()
	pods := make([]*v1.Pod, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range pods {
		p := conformance.NewPod("bench", conformance.ShellContainer("main", "true"))
		p.Annotations[AnnotationFlags] = "--hold"
		pods[i] = p
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := b.Create(ctxFor(tb, time.Minute), conformance.NewCreateRequest(pods[i], conformance.Objects{}))
			if err != nil {
				errs <- err
				return
			}
			ids[i] = res.RemoteID
		}(i)
	}
	wg.Wait()
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i, p := range pods {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := b.Delete(ctxFor(tb, time.Minute), backend.DeleteRequest{Pod: p, RemoteID: ids[i]}); err != nil {
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
	return pods
}

func checkHeld(tb testing.TB, sts []interlink.PodStatus, pods []*v1.Pod) {
	tb.Helper()
	if len(sts) != len(pods) {
		tb.Fatalf("%d statuses for %d pods", len(sts), len(pods))
	}
	for i, st := range sts {
		if st.PodUID != string(pods[i].UID) {
			tb.Fatalf("status %d is for pod %s, asked for %s", i, st.PodUID, pods[i].UID)
		}
		if w := st.Containers[0].State.Waiting; w == nil || w.Reason != "JobHeldUser" {
			tb.Fatalf("pod %d: %+v, want waiting JobHeldUser", i, st.Containers[0].State)
		}
	}
}

// BenchmarkStatus200 asks the status of 200 pods in one call per iteration and reports the squeue runs per
// call (at most 1: calls within squeue_max_age of a run share it) and the time per call.
func BenchmarkStatus200(b *testing.B) {
	be := newLabBackend(b, labConfig(b))
	start := time.Now()
	pods := heldPods(b, be, 200)
	b.Logf("created 200 pods in %v", time.Since(start))
	before := be.SqueueInvocations()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sts, err := be.Status(ctxFor(b, time.Minute), pods)
		if err != nil {
			b.Fatalf("Status: %v", err)
		}
		b.StopTimer()
		checkHeld(b, sts, pods)
		b.StartTimer()
	}
	b.StopTimer()
	perCall := float64(be.SqueueInvocations()-before) / float64(b.N)
	b.ReportMetric(perCall, "squeue/op")
	if perCall > 1 {
		b.Errorf("%v squeue runs per status call, want at most 1", perCall)
	}
}

// TestLabStatusBatchOneSqueue is the benchmark's check in the regular suite: 200 pods, one status call, one
// squeue run.
func TestLabStatusBatchOneSqueue(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	pods := heldPods(t, b, 200)
	before := b.SqueueInvocations()
	start := time.Now()
	sts, err := b.Status(ctxFor(t, time.Minute), pods)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	checkHeld(t, sts, pods)
	if n := b.SqueueInvocations() - before; n != 1 {
		t.Errorf("%d squeue runs for one status call of 200 pods, want 1", n)
	}
	t.Logf("status of 200 pods: one squeue run, %v", took)
}
