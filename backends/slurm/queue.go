package slurm

import (
	"context"
	"sync"
	"time"
)

// queueView shares squeue runs. SLURM 22.05 lists the whole queue for every `squeue --json` (it ignores -j
// with --json), so one run per status call would cost O(N) per pod and O(N²) per sweep of the virtual
// kubelet over N pods. Instead one run answers every caller for maxAge after it started, and callers that
// come while a run is in flight wait for it rather than starting their own.
//
// A run that is getting old is renewed ahead of time by the caller that notices (in the background, that
// caller is answered at once), so that under steady polling no caller waits for squeue at all and the
// single-pod latency does not grow with the queue; squeue still runs about once per maxAge.
//
// A run is never used for a job that this backend submitted or cancelled after the run started: it may not
// list a job submitted after it began (the job would look gone) and lists a cancelled job as it was. Those
// callers wait for (or start) a run that began after the job's last submission or cancellation.
type queueView struct {
	maxAge time.Duration
	// keep bounds how long a job's last touch matters: no run older than this is ever used.
	keep time.Duration
	run  func(ctx context.Context) (map[string]*squeueJob, error)

	mu      sync.Mutex
	seq     uint64               // orders touches and run starts exactly, whatever the clock's resolution
	last    *queueRun            // the newest finished run, nil before the first
	flight  *queueRun            // the newest run in flight, nil when none
	took    time.Duration        // how long the last finished run took
	touched map[string]touchMark // job id → when the backend last submitted or cancelled it
}

// touchMark is when a job was last submitted or cancelled.
type touchMark struct {
	seq uint64
	at  time.Time
}

// queueRun is one squeue run: started at start (seq in the view's order); jobs and err are set when done is
// closed.
type queueRun struct {
	seq   uint64
	start time.Time
	done  chan struct{}
	jobs  map[string]*squeueJob
	err   error
}

func newQueueView(maxAge, commandTimeout time.Duration, run func(context.Context) (map[string]*squeueJob, error)) *queueView {
	return &queueView{maxAge: maxAge, keep: max(maxAge, commandTimeout) + time.Second, run: run,
		touched: map[string]touchMark{}}
}

// touch records that the backend has just submitted or cancelled the job: only runs started after now say
// anything about it.
func (q *queueView) touch(jobID string) {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	q.touched[jobID] = touchMark{seq: q.seq, at: now}
	if len(q.touched) > 1024 {
		for id, t := range q.touched {
			if now.Sub(t.at) > q.keep {
				delete(q.touched, id)
			}
		}
	}
}

// jobs returns the queue as one squeue run listed it, a run fresh enough for every job id given, and
// whether it was shared (no run was started for this call). The run itself is bounded by the command
// timeout, not by ctx: other callers may be waiting for it; ctx only bounds this caller's wait.
func (q *queueView) jobs(ctx context.Context, ids ...string) (map[string]*squeueJob, bool, error) {
	now := time.Now()
	q.mu.Lock()
	var after uint64 // the run must have started after this touch
	for _, id := range ids {
		if t, ok := q.touched[id]; ok && t.seq > after {
			after = t.seq
		}
	}
	if r := q.last; r != nil && r.seq > after && now.Sub(r.start) < q.maxAge {
		// Renewed in the last quarter of its life (or two runs' time, when longer), never before half of it:
		// wide enough that callers a few hundred milliseconds apart meet it.
		if renewAt := max(q.maxAge-max(2*q.took, q.maxAge/4), q.maxAge/2); now.Sub(r.start) >= renewAt && q.flight == nil {
			q.startRun(ctx)
		}
		q.mu.Unlock()
		return r.jobs, true, r.err
	}
	r, shared := q.flight, true
	if r == nil || r.seq <= after {
		r, shared = q.startRun(ctx), false
	}
	q.mu.Unlock()
	select {
	case <-r.done:
		return r.jobs, shared, r.err
	case <-ctx.Done():
		return nil, shared, ctx.Err()
	}
}

// startRun starts a run in the background as the newest in flight; q.mu is held.
func (q *queueView) startRun(ctx context.Context) *queueRun {
	q.seq++
	r := &queueRun{seq: q.seq, start: time.Now(), done: make(chan struct{})}
	q.flight = r
	go q.complete(r, context.WithoutCancel(ctx))
	return r
}

// complete runs squeue for r and publishes its result, unless a newer run already did.
func (q *queueView) complete(r *queueRun, ctx context.Context) {
	r.jobs, r.err = q.run(ctx)
	took := time.Since(r.start)
	q.mu.Lock()
	if q.last == nil || r.seq > q.last.seq {
		q.last, q.took = r, took
	}
	if q.flight == r {
		q.flight = nil
	}
	q.mu.Unlock()
	close(r.done)
}
