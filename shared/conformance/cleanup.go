package conformance

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// DeleteAll deletes every pod b lists, each with grace as its grace period, so that a test leaves the lab's
// shared engine as it found it. It runs at a test's end: what fails is logged, not fatal.
func DeleteAll(t testing.TB, b backend.Backend, grace time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recs, err := b.List(ctx)
	if err != nil {
		t.Logf("cleanup: cannot list the pods left: %v", err)
	}
	for _, r := range recs {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(r.UID), Namespace: r.Namespace, Name: r.Name}}
		if err := b.Delete(ctx, backend.DeleteRequest{Pod: p, GracePeriod: grace}); err != nil {
			t.Logf("cleanup of %s: %v", r.UID, err)
		}
	}
}
