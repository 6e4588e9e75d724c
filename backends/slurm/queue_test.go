package slurm

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingQueue is a queueView over a run that counts its calls and lists the jobs of listed at the
// moment it starts, taking hold before it answers.
type countingQueue struct {
	calls  atomic.Int64
	mu     sync.Mutex
	listed map[string]bool
	hold   time.Duration
	err    error
	gate   chan struct{} // set: runs wait for it to close before answering
}

func (c *countingQueue) run(ctx context.Context) (map[string]*squeueJob, error) {
	c.calls.Add(1)
	c.mu.Lock()
	jobs := map[string]*squeueJob{}
	for id := range c.listed {
		jobs[id] = &squeueJob{JobState: "PENDING"}
	}
	err, gate := c.err, c.gate
	c.mu.Unlock()
	if gate != nil {
		<-gate
	}
	select {
	case <-time.After(c.hold):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return jobs, err
}

func (c *countingQueue) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listed[id] = true
}

// TestQueueViewSingleFlight: callers that come while a run is in flight wait for it, and callers within
// maxAge of its start reuse it; after maxAge a new run is made.
func TestQueueViewSingleFlight(t *testing.T) {
	c := &countingQueue{listed: map[string]bool{"1": true}, hold: 100 * time.Millisecond}
	q := newQueueView(300*time.Millisecond, time.Minute, c.run)
	var wg sync.WaitGroup
	var shared atomic.Int64
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jobs, sh, err := q.jobs(context.Background(), "1")
			if err != nil || jobs["1"] == nil {
				t.Errorf("jobs = %v, %v", jobs, err)
			}
			if sh {
				shared.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := c.calls.Load(); n != 1 {
		t.Fatalf("%d squeue runs for 20 concurrent callers, want 1", n)
	}
	if shared.Load() != 19 {
		t.Errorf("%d callers shared the run, want 19", shared.Load())
	}
	if _, sh, _ := q.jobs(context.Background(), "1"); !sh || c.calls.Load() != 1 {
		t.Errorf("a caller within maxAge of the run made another (shared %v, %d runs)", sh, c.calls.Load())
	}
	time.Sleep(350 * time.Millisecond)
	if _, sh, _ := q.jobs(context.Background(), "1"); sh || c.calls.Load() != 2 {
		t.Errorf("a caller after maxAge reused the old run (shared %v, %d runs)", sh, c.calls.Load())
	}
}

// TestQueueViewTouched: a job submitted after the shared run started is not judged from it (it would look
// gone), though the run is still fresh for the other jobs; nor is a job cancelled after the run started.
func TestQueueViewTouched(t *testing.T) {
	c := &countingQueue{listed: map[string]bool{"1": true}}
	q := newQueueView(time.Hour, time.Minute, c.run)
	if _, _, err := q.jobs(context.Background(), "1"); err != nil {
		t.Fatal(err)
	}
	c.add("2") // sbatch made job 2 after that run
	q.touch("2")
	if jobs, sh, _ := q.jobs(context.Background(), "1"); !sh || jobs["2"] != nil {
		t.Errorf("job 1 was not answered from the fresh shared run (shared %v)", sh)
	}
	jobs, sh, err := q.jobs(context.Background(), "1", "2")
	if err != nil || sh || jobs["2"] == nil {
		t.Fatalf("a batch with the new job 2 = %v, shared %v, %v; want a new run that lists it", jobs, sh, err)
	}
	if jobs, sh, _ := q.jobs(context.Background(), "2"); !sh || jobs["2"] == nil {
		t.Errorf("the run made after job 2's submission is not shared for it (shared %v)", sh)
	}
	q.touch("1") // scancel of job 1
	if _, sh, _ := q.jobs(context.Background(), "1"); sh {
		t.Errorf("job 1, cancelled after the last run started, was answered from that run")
	}
	if n := c.calls.Load(); n != 3 {
		t.Errorf("%d runs, want 3", n)
	}
}

// TestQueueViewErrorsShared: a failed run answers its waiters and, for maxAge, the callers after it (SLURM
// down must not turn every status into an squeue), and a caller that gives up does not fail the others.
func TestQueueViewErrorsShared(t *testing.T) {
	c := &countingQueue{listed: map[string]bool{}, hold: 200 * time.Millisecond, err: errors.New("slurm_load_jobs error: Unable to contact slurm controller")}
	q := newQueueView(time.Hour, time.Minute, c.run)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := q.jobs(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("an impatient caller got %v, want its own deadline", err)
	}
	if _, sh, err := q.jobs(context.Background()); err == nil || !sh {
		t.Errorf("a caller during the run got %v (shared %v), want the run's error, shared", err, sh)
	}
	if _, _, err := q.jobs(context.Background()); err == nil || c.calls.Load() != 1 {
		t.Errorf("after a failed run: %v, %d runs; want the same error from the one run", err, c.calls.Load())
	}
}

// TestQueueViewMaxAgeZero: with squeue_max_age 0 only the run in flight is shared.
func TestQueueViewMaxAgeZero(t *testing.T) {
	c := &countingQueue{listed: map[string]bool{}}
	q := newQueueView(0, time.Minute, c.run)
	q.jobs(context.Background())
	q.jobs(context.Background())
	if n := c.calls.Load(); n != 2 {
		t.Errorf("%d runs for two calls one after the other, want 2", n)
	}
}

// TestQueueViewRenewsAhead: a caller that finds the shared run near the end of its life is answered from it
// at once and starts the next run in the background, so that the caller after it does not wait.
func TestQueueViewRenewsAhead(t *testing.T) {
	c := &countingQueue{listed: map[string]bool{"1": true}, hold: 200 * time.Millisecond}
	q := newQueueView(2*time.Second, time.Minute, c.run)
	q.jobs(context.Background(), "1") // run 1 took 200 ms: it is renewed from 1.5 s of age on
	time.Sleep(500 * time.Millisecond)
	if _, sh, _ := q.jobs(context.Background(), "1"); !sh || c.calls.Load() != 1 {
		t.Fatalf("a call at a third of the run's life: shared %v, %d runs; want the run shared, none started", sh, c.calls.Load())
	}
	gate := make(chan struct{})
	c.mu.Lock()
	c.gate = gate // the renewal cannot answer until the gate opens: a caller waiting for it would hang
	c.mu.Unlock()
	time.Sleep(1000 * time.Millisecond) // age 1.7 s
	answered := make(chan bool)
	go func() {
		_, sh, _ := q.jobs(context.Background(), "1")
		answered <- sh
	}()
	select {
	case sh := <-answered:
		if !sh {
			t.Errorf("the call near the run's end was not answered from it")
		}
	case <-time.After(time.Minute):
		t.Fatal("the call near the run's end waited for the renewal")
	}
	for deadline := time.Now().Add(10 * time.Second); c.calls.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // the renewal's goroutine starts its run
	}
	if n := c.calls.Load(); n != 2 {
		t.Errorf("%d runs, want 2 (the renewal started)", n)
	}
	close(gate)
	time.Sleep(500 * time.Millisecond) // the old run has expired; the renewal has answered
	if _, sh, _ := q.jobs(context.Background(), "1"); !sh || c.calls.Load() != 2 {
		t.Errorf("after the old run expired: shared %v, %d runs; want the renewal shared", sh, c.calls.Load())
	}
}
