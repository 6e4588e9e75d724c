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
	conformance.RunCommunity(t, b, conformance.CommunityOptions{Parallel: true, Skip: map[string]string{
		conformance.Community090Probes:  "the lab's remote node is interLink's virtual kubelet, which reports a container Ready whatever its probes say (dispatcher/e2e TestReadinessProbeDoesNotGateReadyInVirtualKubelet); this backend passes the remote readiness on as it is",
		conformance.Community100Failing: "the lab's remote node is interLink's virtual kubelet, which overwrites every terminated reason (Error, StartError, OOMKilled) with \"Error: <exit code>\" (dispatcher/e2e TestMemoryLimitKillsButOOMKilledReasonLostInVirtualKubelet); this backend passes the remote reason on as it is",
	}})
}
