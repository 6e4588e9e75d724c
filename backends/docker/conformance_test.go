package docker

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// TestConformance runs the shared harness against the lab's real Docker Engine.
func TestConformance(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	conformance.Run(t, b, conformance.Options{Parallel: true})
}
