package podman

import (
	"context"
	"sync"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
)

// pullQueue shares image pulls among the launches that ask for the same image by the same policy at the same
// time: a launch joins the next pull of its image, one that starts after it asked (so a pull Always still
// asks the registry after the pod arrived, as the kubelet does), and every launch waiting meanwhile is
// answered by that one pull. Pods created together (a Job's, a sweep's) cost the service one pull, not one
// each: concurrent pulls of one image serialise on the service's image store anyway, and each held up the
// creates of other pods.
type pullQueue struct {
	mu   sync.Mutex
	next map[pullKey]*pullFlight // the pull each new asker joins, not started yet
	busy map[pullKey]bool        // a pull of the key runs
}

type pullKey struct{ image, policy string }

type pullFlight struct {
	done chan struct{}
	id   string
	err  error
}

// pull pulls image by policy (libpod.Pull*), sharing the pull as pullQueue says; do makes the pull, under
// the backend's context rather than the asker's, which only stops waiting when its own ends.
func (q *pullQueue) pull(ctx context.Context, image, policy string, do func(image, policy string) (string, error)) (string, error) {
	k := pullKey{image, policy}
	q.mu.Lock()
	if q.next == nil {
		q.next, q.busy = map[pullKey]*pullFlight{}, map[pullKey]bool{}
	}
	f := q.next[k]
	if f == nil {
		f = &pullFlight{done: make(chan struct{})}
		q.next[k] = f
		if !q.busy[k] {
			q.busy[k] = true
			go q.run(k, do)
		}
	}
	q.mu.Unlock()
	select {
	case <-f.done:
		return f.id, f.err
	case <-ctx.Done():
		return "", &libpod.UnavailableError{Err: ctx.Err()} // the launch stops: transient, as an unreachable service
	}
}

// run makes the pulls of k one after another while launches wait for one.
func (q *pullQueue) run(k pullKey, do func(image, policy string) (string, error)) {
	for {
		q.mu.Lock()
		f := q.next[k]
		if f == nil {
			delete(q.busy, k)
			q.mu.Unlock()
			return
		}
		delete(q.next, k)
		q.mu.Unlock()
		f.id, f.err = do(k.image, k.policy)
		close(f.done)
	}
}
