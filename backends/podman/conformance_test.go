package podman

import (
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// The shared conformance harness against the lab's real Podman service.
func TestConformance(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	conformance.Run(t, b, conformance.Options{Parallel: true, PodTimeout: 2 * time.Minute})
}
