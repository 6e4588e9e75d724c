package dispatcher

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// The Core answers a Go caller as it answers the interLink routes: typed errors in place of status codes,
// results in place of bodies.
func TestCoreAsAGoAPI(t *testing.T) {
	mems := map[string]*memBackend{"alpha": newMem("alpha"), "beta": newMem("beta")}
	e := startEnv(t, testConfig(t, tempDir(t), "alpha", "beta"), mems)
	c := e.srv.Core()
	ctx := context.Background()

	if _, err := c.Create(ctx, &interlink.RetrievedPodData{Pod: *testPod("", "nouid")}); !IsRequestError(err) || statusOf(err) != 400 {
		t.Fatalf("a pod without a UID: %v", err)
	}
	routed := testPod("uid-r", "r")
	routed.Annotations = map[string]string{DefaultRoutingAnnotation: "nowhere"}
	var re *RouteError
	if _, err := c.Create(ctx, &interlink.RetrievedPodData{Pod: *routed}); !errors.As(err, &re) {
		t.Fatalf("a pod naming an unknown backend: %v", err)
	}

	p := testPod("uid-go", "go", "main", "side")
	res, err := c.Create(ctx, &interlink.RetrievedPodData{Pod: *p.DeepCopy()})
	if err != nil || res.Backend != "alpha" || res.RemoteID != "alpha-1" || res.Duplicate {
		t.Fatalf("create: %+v %v", res, err)
	}
	if again, err := c.Create(ctx, &interlink.RetrievedPodData{Pod: *p.DeepCopy()}); err != nil || !again.Duplicate || again.RemoteID != res.RemoteID {
		t.Fatalf("a retried create: %+v %v", again, err)
	}
	if mems["alpha"].createCount() != 1 {
		t.Fatalf("the backend was asked to create %d times", mems["alpha"].createCount())
	}

	st, err := c.Status(ctx, []*v1.Pod{p})
	if err != nil || len(st) != 1 || len(st[0].Containers) != 2 || st[0].Containers[0].State.Running == nil {
		t.Fatalf("status: %+v %v", st, err)
	}
	if _, err := c.Status(ctx, []*v1.Pod{p, {}}); !IsRequestError(err) || !strings.Contains(err.Error(), "pod 1") {
		t.Fatalf("a status request with a pod without UID: %v", err)
	}
	pods, err := c.Pods(PodFilter{Backend: "alpha"})
	if err != nil || len(pods) != 1 || pods[0].Phase != v1.PodRunning {
		t.Fatalf("pods: %+v %v", pods, err)
	}
	if _, err := c.Pods(PodFilter{Phase: "Sleeping"}); !IsRequestError(err) {
		t.Fatalf("a filter with a bad phase: %v", err)
	}

	var log strings.Builder
	if name, err := c.Logs(ctx, interlink.LogStruct{PodUID: "uid-go", Namespace: "default", PodName: "go", ContainerName: "main"}, &log); err != nil || name != "alpha" {
		t.Fatalf("logs: %q %v", name, err)
	}
	if _, err := c.Logs(ctx, interlink.LogStruct{PodUID: "uid-go", Namespace: "default", PodName: "go"}, &log); !IsRequestError(err) {
		t.Fatalf("logs without a container: %v", err)
	}

	del, err := c.Delete(ctx, p.DeepCopy())
	if err != nil || del.Backend != "alpha" || !strings.Contains(del.Message, "deleted from backend alpha") {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if _, _, err := c.Pod(ctx, "uid-go"); backend.KindOf(err) != backend.KindNotFound {
		t.Fatalf("a deleted pod: %v", err)
	}
	if del, err := c.Delete(ctx, p.DeepCopy()); err != nil || !strings.Contains(del.Message, "deleted") {
		t.Fatalf("a second delete: %+v %v", del, err)
	}
}
