package docker

import (
	"errors"
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

func TestStaleTask(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{errors.New("Error response from daemon: task d250a9018d8d: already exists"), true},
		{errors.New("Error response from daemon: No such container: d250"), false},
		{errors.New("Conflict. The container name \"/x\" is already in use"), false},
		{nil, false},
	} {
		if got := staleTask(c.err); got != c.want {
			t.Errorf("staleTask(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
