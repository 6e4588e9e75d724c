package docker

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// TestCommunity runs the pods of interLink's community test set (vk-test-set) against the lab's Docker.
func TestCommunity(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	conformance.RunCommunity(t, b, conformance.CommunityOptions{Parallel: true})
}
