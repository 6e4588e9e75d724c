package slurm

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// TestLabSqueuePerStatusUnderPolling polls the single-pod status of N held jobs the way the virtual kubelet
// does (each pod once a round, spread over the round, 8 at a time) and counts squeue runs: one run must serve
// twenty answers or more (≤ 0.05 per status). It is a count, not a timing.
func TestLabSqueuePerStatusUnderPolling(t *testing.T) {
	t.Parallel()
	const n, rounds = 100, 4
	const round = time.Second
	b := newLabBackend(t, labConfig(t))
	pods := heldPods(t, b, n)
	before := b.SqueueInvocations()
	var statuses, wrong atomic.Int64
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	start := time.Now()
	for r := range rounds {
		for i, p := range pods {
			// Pod i of round r is asked at r*round + i*round/n, as a poller spreading its pods does.
			time.Sleep(time.Until(start.Add(time.Duration(r)*round + time.Duration(i)*round/n)))
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				st := statusOf(t, b, p)
				statuses.Add(1)
				if w := st.Containers[0].State.Waiting; w == nil || w.Reason != "JobHeldUser" {
					wrong.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	runs := b.SqueueInvocations() - before
	per := float64(runs) / float64(statuses.Load())
	t.Logf("%d single-pod statuses of %d held jobs over %v: %d squeue runs, %.4f per status", statuses.Load(), n, time.Since(start).Round(time.Millisecond), runs, per)
	if wrong.Load() > 0 {
		t.Errorf("%d statuses did not say JobHeldUser", wrong.Load())
	}
	if per > 0.05 {
		t.Errorf("%.4f squeue runs per single-pod status, want at most 0.05", per)
	}
}

// TestLabSharedQueueJustSubmittedAndCancelled: a job submitted after the shared squeue run is not reported
// gone because that run does not list it, and a job cancelled after it is not reported as it was.
func TestLabSharedQueueJustSubmittedAndCancelled(t *testing.T) {
	t.Parallel()
	cfg := labConfig(t)
	long := Duration(time.Hour) // the shared run would answer for the whole test if nothing said otherwise
	cfg.SqueueMaxAge = &long
	b := newLabBackend(t, cfg)
	first := heldPods(t, b, 1)[0]
	if st := statusOf(t, b, first); st.Containers[0].State.Waiting == nil {
		t.Fatalf("held pod: %+v", st.Containers[0].State)
	}
	runs := b.SqueueInvocations()

	p := conformance.NewPod("fresh", conformance.ShellContainer("main", "true"))
	p.Annotations[AnnotationFlags] = "--hold"
	id := createPod(t, b, p, conformance.Objects{})
	st := statusOf(t, b, p)
	if w := st.Containers[0].State.Waiting; w == nil || w.Reason != "JobHeldUser" {
		t.Errorf("status right after create = %+v, want waiting JobHeldUser (not gone)", st.Containers[0].State)
	}
	if n := b.SqueueInvocations() - runs; n != 1 {
		t.Errorf("%d squeue runs for the status after the create, want 1", n)
	}
	if st := statusOf(t, b, first); st.Containers[0].State.Waiting == nil || b.SqueueInvocations()-runs != 1 {
		t.Errorf("the older pod's status made another squeue run or changed: %+v", st.Containers[0].State)
	}

	if err := b.cancelJob(id); err != nil {
		t.Fatal(err)
	}
	st = statusOf(t, b, p)
	if term := st.Containers[0].State.Terminated; term == nil || term.Reason != "CANCELLED" {
		t.Errorf("status right after scancel = %+v, want terminated CANCELLED", st.Containers[0].State)
	}
	if pod.Phase(st) != v1.PodFailed {
		t.Errorf("phase after scancel = %s, want Failed", pod.Phase(st))
	}
}

// TestLabDeletePendingAsksNoSqueue: a pod whose job never started is deleted with one scancel and no
// squeue run, and its job is gone from the queue's live states.
func TestLabDeletePendingAsksNoSqueue(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	p := conformance.NewPod("pending-delete", conformance.ShellContainer("main", "true"))
	p.Annotations[AnnotationFlags] = "--hold"
	res, err := b.Create(ctxFor(t, time.Minute), conformance.NewCreateRequest(p, conformance.Objects{}))
	if err != nil {
		t.Fatal(err)
	}
	runs := b.SqueueInvocations()
	if err := b.Delete(ctxFor(t, time.Minute), backend.DeleteRequest{Pod: p, RemoteID: res.RemoteID, GracePeriod: time.Second}); err != nil {
		t.Fatal(err)
	}
	if n := b.SqueueInvocations() - runs; n != 0 {
		t.Errorf("%d squeue runs for the delete of a pending job, want 0", n)
	}
	if j := squeueJobOf(t, b, res.RemoteID); j != nil && stateClass(j.JobState) != jobOver {
		t.Errorf("job %s is still %s after the delete", res.RemoteID, j.JobState)
	}
	if st := statusOf(t, b, p); st.Containers[0].State.Terminated == nil || st.Containers[0].State.Terminated.Reason != pod.ReasonNotFound {
		t.Errorf("status after the delete = %+v, want NotFound", st.Containers[0].State)
	}
}
