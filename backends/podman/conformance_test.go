package podman

import (
	"context"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// The shared conformance harness against the lab's real Podman service.
func TestConformance(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	conformance.Run(t, b, conformance.Options{Parallel: true, PodTimeout: 2 * time.Minute, Vanish: b.vanishForTest})
}

// vanishForTest removes the Podman pod of pod uid with its containers through the libpod API, as an
// operator's `podman pod rm -f` would, without the backend knowing.
func (b *Backend) vanishForTest(t testing.TB, uid, _ string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pods, err := b.api.PodList(ctx, map[string]string{pod.LabelPodUID: uid})
	if err != nil {
		t.Fatalf("vanish: cannot list the Podman pods of pod %s: %v", uid, err)
	}
	if len(pods) == 0 {
		t.Fatalf("vanish: Podman has no pod for pod %s", uid)
	}
	for _, p := range pods {
		if err := b.api.PodRemove(ctx, p.ID, true); err != nil {
			t.Fatalf("vanish: cannot remove Podman pod %s: %v", p.ID, err)
		}
	}
}
