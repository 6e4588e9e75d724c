package podman

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// A service that cannot enforce limits (rootless on cgroup v1) refuses a pod asking for memory, with a
// sentence that says what to change; a pod asking for nothing, or a service that enforces limits, passes.
func TestLimitsRefusedWhereNotEnforced(t *testing.T) {
	host := func(rootless bool, cgroup string) *Backend {
		var i libpod.Info
		i.Host.Security.Rootless = rootless
		i.Host.CgroupVersion = cgroup
		return &Backend{host: &i}
	}
	plain := newPod("plain", busybox("main", "true"))
	limited := newPod("limited", busybox("main", "true"))
	limited.Spec.Containers[0].Resources.Limits = v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")}

	err := host(true, "v1").checkLimitsEnforced(context.Background(), limited)
	var be *backend.Error
	if !errors.As(err, &be) || be.Kind != backend.KindInvalid || !strings.Contains(err.Error(), "rootless on cgroup v1") {
		t.Fatalf("rootless cgroup v1, pod with a memory limit: %v, want an invalid-pod refusal naming rootless on cgroup v1", err)
	}
	for _, c := range []struct {
		b    *Backend
		p    *v1.Pod
		name string
	}{
		{host(true, "v1"), plain, "rootless cgroup v1, no limits"},
		{host(true, "v2"), limited, "rootless cgroup v2"},
		{host(false, "v1"), limited, "rootful cgroup v1"},
	} {
		if err := c.b.checkLimitsEnforced(context.Background(), c.p); err != nil {
			t.Errorf("%s: %v, want the pod accepted", c.name, err)
		}
	}
}
