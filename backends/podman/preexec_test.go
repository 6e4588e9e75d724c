package podman

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// The pre-exec annotations run before the containers, in the pod's network namespace, and what they start
// in the background stays up: here a web server the main container then reaches on localhost. A failing text
// keeps every container from starting, with the reason on each. Delete is prompt despite the helper.
func TestPreExecRunsInPodNetwork(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	p := newPod("pre-exec", busybox("main", "wget -qO- http://127.0.0.1:7777/mesh"))
	p.Annotations = map[string]string{pod.AnnotationPreExec: "mkdir -p /tmp/www && echo mesh-ready > /tmp/www/mesh && httpd -p 7777 -h /tmp/www"}
	create(t, b, p)
	st := waitFor(t, b, p, time.Minute, "main to end", func(st interlink.PodStatus) bool { return st.Containers[0].State.Terminated != nil })
	if out := logs(t, b, p, "main", interlink.LogOpts{}); st.Containers[0].State.Terminated.ExitCode != 0 || out != "mesh-ready\n" {
		t.Fatalf("main: %s, log %q; want it to reach the pre-exec's server", stateString(st.Containers[0]), out)
	}

	bad := newPod("pre-exec-fails", busybox("main", "echo must-not-run"))
	bad.Annotations = map[string]string{pod.AnnotationWstunnel: "exit 7"}
	create(t, b, bad)
	st = waitFor(t, b, bad, time.Minute, "PreExecError", func(st interlink.PodStatus) bool {
		w := st.Containers[0].State.Waiting
		return w != nil && w.Reason == pod.ReasonPreExecError
	})
	if msg := st.Containers[0].State.Waiting.Message; !strings.Contains(msg, "exit code 7") {
		t.Errorf("the reason's message = %q, want the exit code", msg)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := b.Delete(ctx, backend.DeleteRequest{Pod: p, GracePeriod: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	// 2 s of grace plus the engine's own work: 3 s on a quiet machine, 8.7 s seen on a fresh machine busy
	// compiling. A delete waiting on the helper would take the 3 min of its context.
	if d := time.Since(start); d > time.Minute {
		t.Errorf("Delete took %v with the pre-exec helper up", d)
	}
	if ph := status(t, b, p).Containers[0].State; ph.Terminated == nil {
		t.Errorf("after delete: %+v", ph)
	}
}
