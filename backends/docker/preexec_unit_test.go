package docker

import (
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// The pre-exec helper may configure the pod's own network, never the host's: a hostNetwork pod's helper is
// given no capability, which would otherwise be NET_ADMIN on the host that no policy granted.
func TestPreExecCapabilities(t *testing.T) {
	own := preExecCapabilities(&v1.Pod{})
	if !slices.Equal(own, []string{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("in the pod's own network namespace the helper gets %v, want NET_ADMIN and NET_RAW", own)
	}
	if host := preExecCapabilities(&v1.Pod{Spec: v1.PodSpec{HostNetwork: true}}); len(host) != 0 {
		t.Errorf("in the host's network namespace the helper gets %v, want nothing", host)
	}
}
