package podman

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim/shimtest"
)

// testEnv is one backend instance's environment; a second backend built from the same env plays a restarted
// backend process.
func testEnv(t *testing.T) backend.Env {
	t.Helper()
	labtest.RequirePodman(t)
	cfg, err := json.Marshal(map[string]any{"pods": 50, "shim": shimtest.Build(t)})
	if err != nil {
		t.Fatal(err)
	}
	return backend.Env{Name: "podman", Instance: "test-" + randHex(6), Config: cfg, DataDir: t.TempDir()}
}

func newTestBackend(t *testing.T, env backend.Env) *Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := newBackend(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conformance.DeleteAll(t, b, 0)
		_ = b.Close()
	})
	// A start waits at most hostInfoWait for the service's /info and the first create with limits waits for
	// the rest. A long-running backend asks once; every test here starts its own backend, dozens at a time,
	// and on a loaded service that one-off answer took 34 s (CI, 2026-12-02): wait for it here, so that a
	// test's create measures the create.
	if _, err := b.hostInfo(ctx); err != nil {
		t.Fatalf("the Podman service did not describe its host: %v", err)
	}
	return b
}

func randHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// newPod returns a pod with restartPolicy Never and the given containers.
func newPod(name string, containers ...v1.Container) *v1.Pod {
	u := randHex(16)
	uid := fmt.Sprintf("%s-%s-%s-%s-%s", u[:8], u[8:12], u[12:16], u[16:20], u[20:])
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(uid)},
		Spec:       v1.PodSpec{RestartPolicy: v1.RestartPolicyNever, Containers: containers},
	}
}

func busybox(name string, script string) v1.Container {
	return v1.Container{Name: name, Image: labtest.BusyboxImage, ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"sh", "-c", script}}
}

func create(t *testing.T, b *Backend, p *v1.Pod, objs ...interlink.RetrievedContainer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := b.Create(ctx, backend.CreateRequest{Pod: p, Containers: objs}); err != nil {
		t.Fatalf("create %s: %v", p.Name, err)
	}
	// Create answers before pulling and starting (interLink's call has a deadline). The bound is loose: a
	// create that started the pod would take the pull and the start, and one stuck on the service its whole
	// 30 s context. (The service's /info, which a create with limits needs, is asked in newTestBackend.)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("create took %v; it must answer before pulling and starting", d)
	}
}

func status(t *testing.T, b *Backend, p *v1.Pod) interlink.PodStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := b.Status(ctx, []*v1.Pod{p})
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 {
		t.Fatalf("status of one pod returned %d", len(st))
	}
	return st[0]
}

// waitFor polls Status until cond holds (the test's own waiting: the backend itself never polls).
func waitFor(t *testing.T, b *Backend, p *v1.Pod, timeout time.Duration, what string, cond func(interlink.PodStatus) bool) interlink.PodStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := status(t, b, p)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: %s did not happen within %v; last status: %s\n%s", p.Name, what, timeout, describe(st), engineSide(b, p))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// engineSide says, for a failure message, what the engine itself lists of pod p's containers, what the
// status view holds of them, and where the pod's launch is, if one still runs: a status that stays wrong is
// then told apart from a launch that stopped making progress.
func engineSide(b *Backend, p *v1.Pod) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	uid := string(p.UID)
	labels := map[string]string{pod.LabelPodUID: uid}
	for k, v := range b.view.labels {
		labels[k] = v
	}
	var out strings.Builder
	list := func(what string, ctrs []libpod.ListContainer) {
		fmt.Fprintf(&out, "%s:", what)
		for _, c := range ctrs {
			if !c.IsInfra {
				fmt.Fprintf(&out, " %s=%s(started %d, exited %d, code %d)", c.Labels[pod.LabelContainer], c.State, c.StartedAt, c.ExitedAt, c.ExitCode)
			}
		}
		out.WriteString("\n")
	}
	if ctrs, err := b.eng.ContainerList(ctx, labels); err != nil {
		fmt.Fprintf(&out, "engine: cannot list: %v\n", err)
	} else {
		list("engine", ctrs)
	}
	b.view.mu.Lock()
	pv, ok := b.view.pods[uid]
	var entry podView
	if ok {
		entry = *pv
	}
	fresh := b.view.freshLocked(uid, b.view.now())
	streaming := b.view.streamingLocked(b.view.now())
	b.view.mu.Unlock()
	list(fmt.Sprintf("view (entry %v, fresh %v, streaming %v, atSeq %d, evSeq %d, recent %d)", ok, fresh, streaming, entry.atSeq, entry.evSeq, len(entry.recent)), entry.ctrs)
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "(*Backend).launch") {
			out.WriteString("launch still running:\n" + g + "\n")
		}
	}
	return out.String()
}

// waitLaunchDone waits until the backend's launch of pod p, if one runs, has ended: from then on nothing of the
// launch can start a container or call the engine for the pod.
func waitLaunchDone(t *testing.T, b *Backend, p *v1.Pod, timeout time.Duration) {
	t.Helper()
	b.mu.Lock()
	h, ok := b.running[string(p.UID)]
	b.mu.Unlock()
	if !ok {
		return
	}
	select {
	case <-h.done:
	case <-time.After(timeout):
		t.Fatalf("pod %s: its launch still runs after %v", p.Name, timeout)
	}
}

func phaseIs(ph v1.PodPhase) func(interlink.PodStatus) bool {
	return func(st interlink.PodStatus) bool { return pod.Phase(st) == ph }
}

func describe(st interlink.PodStatus) string {
	var parts []string
	for _, group := range [][]v1.ContainerStatus{st.InitContainers, st.Containers} {
		for _, cs := range group {
			parts = append(parts, cs.Name+"="+stateString(cs))
		}
	}
	return strings.Join(parts, " ")
}

func stateString(cs v1.ContainerStatus) string {
	s := cs.State
	switch {
	case s.Running != nil:
		return fmt.Sprintf("running(restarts %d)", cs.RestartCount)
	case s.Terminated != nil:
		return fmt.Sprintf("terminated(%d %s %q, restarts %d)", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message, cs.RestartCount)
	case s.Waiting != nil:
		return fmt.Sprintf("waiting(%s %q, restarts %d)", s.Waiting.Reason, s.Waiting.Message, cs.RestartCount)
	}
	return "empty"
}

func logs(t *testing.T, b *Backend, p *v1.Pod, container string, opts interlink.LogOpts) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sb strings.Builder
	err := b.Logs(ctx, backend.LogRequest{LogStruct: interlink.LogStruct{Namespace: p.Namespace, PodUID: string(p.UID), PodName: p.Name, ContainerName: container, Opts: opts}}, &sb)
	if err != nil {
		t.Fatalf("logs of %s/%s: %v", p.Name, container, err)
	}
	return sb.String()
}
