package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
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
			_ = contained(sup.log, name, func() { got[i] = ask(cctx, name, b) })
		}()
	}
	wg.Wait()
	return names, got
}

// contained runs f and turns a panic in it into an error, logged with its stack, so that a bug met while
// handling one backend's answer costs that answer alone: the goroutines a handler starts are out of reach of
// the handlers' recoverer, and a panic there would end the dispatcher with every backend's pods.
func contained(log *slog.Logger, backendName string, f func()) (err error) {
	defer func() {
		if rec := recover(); rec != nil {
			log.Error("panic while handling a backend's answer (a bug)", "backend", backendName, "panic", rec,
				"stack", string(debug.Stack()))
			err = fmt.Errorf("the dispatcher failed handling the answer of backend %q (a bug, logged with its stack)", backendName)
		}
	}()
	f()
	return nil
}
