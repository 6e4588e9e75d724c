package dispatcher

import (
	"context"
	"sync"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// askEveryBackend calls ask on every backend of sup that is up, all at once, each under a context that ends
// after timeout, and waits for every answer. It returns the backends' names in config order and, at the same
// index, what ask returned; a backend that is down is not asked and leaves the zero value. ask deals with its
// own failures (it logs them and returns the zero value), so that one slow or broken backend costs an answer
// no more than the timeout and takes nothing from the others.
func askEveryBackend[T any](ctx context.Context, sup *Supervisor, timeout time.Duration,
	ask func(ctx context.Context, name string, b backend.Backend) T) ([]string, []T) {
	names := sup.Names()
	got := make([]T, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		b, _, err := sup.Backend(name)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			got[i] = ask(cctx, name, b)
		}()
	}
	wg.Wait()
	return names, got
}
