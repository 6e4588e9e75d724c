package podman

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// The interLink vk-test-set templates that run offline (shared/conformance's community pods), each with its
// own expectations, against the lab's Podman: one subtest per template.
func TestCommunity(t *testing.T) {
	b := newTestBackend(t, testEnv(t))
	conformance.RunCommunity(t, b, conformance.CommunityOptions{Parallel: true})
}
