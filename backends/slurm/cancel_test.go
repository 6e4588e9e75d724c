package slurm

import (
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func scancelRuns(b *Backend) int {
	var m dto.Metric
	_ = b.metrics.scancelCalls.Write(&m)
	return int(m.GetCounter().GetValue())
}

// heldJobs submits n held jobs straight with sbatch and cancels what is left of them when the test ends.
func heldJobs(t *testing.T, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		out, err := exec.Command("sbatch", "--parsable", "--hold", "--mem=64M", "--output=/dev/null",
			"--job-name=cancel-batch-"+strconv.Itoa(i), "--wrap", "sleep 600").Output()
		if err != nil {
			t.Fatalf("sbatch: %v", err)
		}
		ids[i], _, _ = strings.Cut(strings.TrimSpace(string(out)), ";")
	}
	t.Cleanup(func() { _ = exec.Command("scancel", ids...).Run() })
	return ids
}

// TestLabConcurrentCancelsShareScancel: concurrent cancels of held jobs share scancel runs (fewer runs than
// jobs) and every job ends; a shared run that fails (here for a job id scancel refuses, which makes it cancel
// nothing) is done again job by job, so the others are still cancelled and only the bad one gets the error.
func TestLabConcurrentCancelsShareScancel(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	ids := heldJobs(t, 6)
	before := scancelRuns(b)
	// One shared run of all of them, the bad id among them, as the loop takes what is pending.
	c := b.cancels
	var calls []*cancelCall
	c.mu.Lock()
	for _, id := range append(append([]string(nil), ids[:3]...), append([]string{"not-a-job-id"}, ids[3:]...)...) {
		call := &cancelCall{id: id, done: make(chan error, 1)}
		calls = append(calls, call)
		c.pending = append(c.pending, call)
	}
	c.running = true
	c.mu.Unlock()
	c.loop(ctxFor(t, time.Minute))
	for _, call := range calls {
		err := <-call.done
		if bad := call.id == "not-a-job-id"; bad != (err != nil) || bad && !strings.Contains(err.Error(), "not-a-job-id") {
			t.Errorf("cancel of %s in a shared run that failed: %v", call.id, err)
		}
	}
	if runs := scancelRuns(b) - before; runs != 1+len(calls) {
		t.Errorf("%d scancel runs, want the shared one and one per job", runs)
	}
	waitGone(t, b, ids)

	// Without a bad id among them, concurrent cancels need fewer runs than jobs, and all jobs end.
	ids = heldJobs(t, 24)
	before = scancelRuns(b)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.cancelJob(id); err != nil {
				t.Errorf("cancel of job %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	if runs := scancelRuns(b) - before; runs >= len(ids) {
		t.Errorf("%d scancel runs for %d concurrent cancels, want fewer", runs, len(ids))
	} else {
		t.Logf("%d concurrent cancels, %d scancel runs", len(ids), runs)
	}
	waitGone(t, b, ids)
}

func waitGone(t *testing.T, b *Backend, ids []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			j := squeueJobOf(t, b, id)
			if j == nil || stateClass(j.JobState) == jobOver {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s is still %s after its cancel", id, j.JobState)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// A shared run that fails because the controller cannot be reached says nothing of any one job: every
// caller gets that answer, with no run of its own. (The lab's controller cannot be taken away for a test: the
// scancel here prints what SLURM's prints then.)
func TestSharedCancelUnreachableIsNotRetriedPerJob(t *testing.T) {
	b := cancelBackend(commandLine{"sh", "-c", "echo 'scancel: error: Unable to contact slurm controller (connect failure)' >&2; exit 1", "scancel"})
	c := b.cancels
	var calls []*cancelCall
	c.mu.Lock()
	for _, id := range []string{"1", "2", "3"} {
		call := &cancelCall{id: id, done: make(chan error, 1)}
		calls = append(calls, call)
		c.pending = append(c.pending, call)
	}
	c.running = true
	c.mu.Unlock()
	c.loop(ctxFor(t, time.Minute))
	for _, call := range calls {
		if err := <-call.done; !unreachable(err) {
			t.Errorf("cancel of %s with the controller away = %v, want its unreachable error", call.id, err)
		}
	}
	if runs := scancelRuns(b); runs != 1 {
		t.Errorf("%d scancel runs, want the shared one only", runs)
	}
}
