package slurm

import (
	"context"
	"errors"
	"sync"
)

// cancelBatch shares scancel runs between deletes: a plain `scancel <id>` asked while another runs waits for
// it and then goes, with every other one that came meanwhile, into one `scancel <id> <id>...`. Each scancel
// process costs as much to start (configuration, plugins, credentials) as its RPCs to slurmctld, so under
// concurrent deletes this saves a process per job, which on a busy submit host is most of a delete's time.
//
// The answers stay exact: scancel exits 0 when every job given is cancelled or already over (it says nothing
// of those unless verbose), and when a shared run fails for one of its jobs (scancel then cancels none) each
// is cancelled again on its own, so that each delete gets its own job's error.
type cancelBatch struct {
	run func(ctx context.Context, ids []string) error // one scancel of these job ids

	mu      sync.Mutex
	pending []*cancelCall
	running bool
}

// newCancelBatch shares the backend's scancel runs.
func (b *Backend) newCancelBatch() *cancelBatch {
	return &cancelBatch{run: func(ctx context.Context, ids []string) error { return b.scancelJobs(ctx, ids...) }}
}

type cancelCall struct {
	id   string
	done chan error // buffered: the runner never waits for a caller that gave up
}

// cancel cancels the job and returns scancel's error for it. ctx bounds only this caller's wait: the run
// goes on for the other callers.
func (c *cancelBatch) cancel(ctx context.Context, id string) error {
	call := &cancelCall{id: id, done: make(chan error, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, call)
	if !c.running {
		c.running = true
		go c.loop(context.WithoutCancel(ctx))
	}
	c.mu.Unlock()
	select {
	case err := <-call.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop runs scancel for what is pending until nothing is.
func (c *cancelBatch) loop(ctx context.Context) {
	for {
		c.mu.Lock()
		calls := c.pending
		c.pending = nil
		if len(calls) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		ids := make([]string, len(calls))
		for i, call := range calls {
			ids[i] = call.id
		}
		err := c.run(ctx, ids)
		// A controller that cannot be reached, or a scancel that hung, says nothing of any one job: each
		// caller gets that answer rather than a run of its own that would meet the same.
		if err == nil || len(calls) == 1 || unreachable(err) || errors.Is(err, context.DeadlineExceeded) {
			for _, call := range calls {
				call.done <- err
			}
			continue
		}
		for _, call := range calls {
			call.done <- c.run(ctx, []string{call.id})
		}
	}
}
