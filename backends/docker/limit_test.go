package docker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// Creates of different pods at once never take the backend past its pods limit: the count and the
// reservation of a pod's place are one step, not a count that every concurrent create passes before any of
// them has made its pod.
func TestPodsLimitHoldsUnderConcurrentCreates(t *testing.T) {
	t.Parallel()
	const limit, tries = 2, 8
	b := newBackend(t, map[string]any{"pods": limit})
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, refused := 0, 0
	start := make(chan struct{})
	for i := 0; i < tries; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := conformance.NewPod("limit", conformance.ShellContainer("main", "sleep 30"))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			<-start
			_, err := b.Create(ctx, conformance.NewCreateRequest(p, conformance.Objects{}))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case backend.KindOf(err) == backend.KindUnavailable:
				refused++
			default:
				t.Errorf("Create: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if accepted != limit || refused != tries-limit {
		t.Fatalf("%d creates at once with a limit of %d: %d accepted, %d refused; want %d and %d",
			tries, limit, accepted, refused, limit, tries-limit)
	}
	if n := b.countPods(); n != limit {
		t.Fatalf("%d pods on the backend, its limit is %d", n, limit)
	}
}
