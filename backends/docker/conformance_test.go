package docker

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// TestConformance runs the shared harness against the lab's real Docker Engine.
func TestConformance(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	conformance.Run(t, b, conformance.Options{Parallel: true, Vanish: b.vanishForTest})
}

// vanishForTest removes every container of pod uid (its pause container too) with the Docker API, as an
// operator's `docker rm -f` would, without the backend knowing.
func (b *Backend) vanishForTest(t testing.TB, uid, _ string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := b.cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", pod.LabelPodUID+"="+uid))})
	if err != nil {
		t.Fatalf("vanish: cannot list the pod's containers: %v", err)
	}
	if len(cs) == 0 {
		t.Fatalf("vanish: Docker has no container of pod %s", uid)
	}
	for _, c := range cs {
		if err := b.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Fatalf("vanish: cannot remove container %s: %v", c.ID, err)
		}
	}
}
