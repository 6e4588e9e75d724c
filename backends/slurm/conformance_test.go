package slurm

import (
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// TestConformance runs the shared harness against the lab's real SLURM, with Podman running the containers
// inside the jobs.
func TestConformance(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	conformance.Run(t, b, conformance.Options{
		PodTimeout:  3 * time.Minute,
		CallTimeout: time.Minute,
		GracePeriod: 2 * time.Second,
		Parallel:    true,
	})
}
