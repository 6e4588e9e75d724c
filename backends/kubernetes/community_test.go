package kubernetes

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// TestCommunity runs the pods of interLink's community test set (vk-test-set) on the lab's cluster through
// this backend.
func TestCommunity(t *testing.T) {
	t.Parallel()
	b, _ := newBackend(t, nil)
	conformance.RunCommunity(t, b, conformance.CommunityOptions{Parallel: true})
}
