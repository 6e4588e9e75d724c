package kubernetes

import (
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// TestConformance runs the shared harness against the lab's Kubernetes cluster, whose virtual node runs the
// remote pods on the lab's dispatcher: the "second dispatcher instance behind the remote cluster's own
// virtual node" of issue 17.
func TestConformance(t *testing.T) {
	t.Parallel()
	b, r := newBackend(t, nil)
	conformance.Run(t, b, conformance.Options{Parallel: true, Vanish: r.vanish,
		PodTimeout: 4 * time.Minute, CallTimeout: 2 * time.Minute})
}
