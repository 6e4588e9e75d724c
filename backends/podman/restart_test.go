package podman

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

func launch(t *testing.T, bin string, env backend.Env) *backend.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := backend.Launch(ctx, backend.LaunchConfig{Name: env.Name, Path: bin, Env: env,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func statusesOf(t *testing.T, b backend.Backend, pods []*v1.Pod) []interlink.PodStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := b.Status(ctx, pods)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A backend process killed with SIGKILL and started again over the same engine and data directory reports the
// same status for every pod it ran, finishes a launch the kill interrupted, and lists every pod.
func TestKilledBackendRecovers(t *testing.T) {
	t.Parallel()
	env := testEnv(t)
	bin := labtest.BuildBackend(t, "./cmd/backend-podman")
	t.Cleanup(func() { newTestBackend(t, env) }) // its cleanup deletes whatever the processes left

	first := launch(t, bin, env)
	completed := newPod("completed", busybox("main", "echo done"))
	running := newPod("running", busybox("main", "echo up; exec sleep 300"))
	initFail := newPod("init-fail", busybox("main", "echo never"))
	initFail.Spec.InitContainers = []v1.Container{busybox("setup", "exit 5")}
	pullFail := newPod("pull-fail", v1.Container{Name: "main", Image: "127.0.0.1:5000/missing-image:v9", ImagePullPolicy: v1.PullIfNotPresent})
	restarting := newPod("restarting", busybox("main", "echo run; exit 3"))
	restarting.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	settled := []*v1.Pod{completed, running, initFail, pullFail}
	for _, p := range append(settled, restarting) {
		if _, err := first.Create(context.Background(), createReq(p)); err != nil {
			t.Fatalf("create %s: %v", p.Name, err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	var before []interlink.PodStatus
	for {
		before = statusesOf(t, first, settled)
		ok := pod.Phase(before[0]) == v1.PodSucceeded && pod.Phase(before[1]) == v1.PodRunning &&
			pod.Phase(before[2]) == v1.PodFailed && before[3].Containers[0].State.Waiting != nil &&
			before[3].Containers[0].State.Waiting.Reason == pod.ReasonErrImagePull
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pods did not settle: %s | %s | %s | %s", describe(before[0]), describe(before[1]), describe(before[2]), describe(before[3]))
		}
		time.Sleep(300 * time.Millisecond)
	}
	// A launch cut by the kill: its init container is still running when the process dies.
	slowInit := newPod("slow-init", busybox("main", "echo after-init"))
	slowInit.Spec.InitContainers = []v1.Container{busybox("wait", "sleep 3")}
	if _, err := first.Create(context.Background(), createReq(slowInit)); err != nil {
		t.Fatal(err)
	}
	waitForOn(t, first, slowInit, time.Minute, "the init container to run", func(st interlink.PodStatus) bool {
		return len(st.InitContainers) == 1 && st.InitContainers[0].State.Running != nil
	})

	if err := syscall.Kill(first.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.Done()

	second := launch(t, bin, env)
	defer second.Stop()
	after := statusesOf(t, second, settled)
	for i := range settled {
		if got, want := describe(after[i]), describe(before[i]); got != want {
			t.Errorf("pod %s after the restart: %s\nbefore: %s", settled[i].Name, got, want)
		}
	}
	st := waitForOn(t, second, restarting, time.Minute, "restarts to be counted", func(st interlink.PodStatus) bool {
		return st.Containers[0].RestartCount >= 1
	})
	if last := st.Containers[0].LastTerminationState.Terminated; last == nil || last.ExitCode != 3 {
		t.Errorf("restarting pod's lastState after the backend restart: %s", describe(st))
	}
	waitForOn(t, second, slowInit, time.Minute, "the interrupted launch to finish", phaseIs(v1.PodSucceeded))
	var sb strings.Builder
	err := second.Logs(context.Background(), backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: string(slowInit.UID), ContainerName: "main"}}, &sb)
	if err != nil || sb.String() != "after-init\n" {
		t.Fatalf("main of the interrupted pod logged %q (%v)", sb.String(), err)
	}
	recs, err := second.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	phases := map[string]v1.PodPhase{}
	for _, r := range recs {
		phases[r.UID] = r.Phase
	}
	for p, want := range map[*v1.Pod]v1.PodPhase{completed: v1.PodSucceeded, running: v1.PodRunning, initFail: v1.PodFailed, pullFail: v1.PodPending, slowInit: v1.PodSucceeded} {
		if got, ok := phases[string(p.UID)]; !ok || got != want {
			t.Errorf("List after the restart: pod %s has phase %q (listed %v), want %s", p.Name, got, ok, want)
		}
	}
}

func waitForOn(t *testing.T, b backend.Backend, p *v1.Pod, timeout time.Duration, what string, cond func(interlink.PodStatus) bool) interlink.PodStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := statusesOf(t, b, []*v1.Pod{p})[0]
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: %s did not happen within %v; last status: %s", p.Name, what, timeout, describe(st))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// An older backend still running beside a new one on the same data directory (as one whose dispatcher
// was SIGKILLed did, before backends died with their dispatcher) never brings back a pod the new one
// deleted: its launch, retrying a failing init container, finds the pod's record gone and ends, making
// neither Podman objects nor the pod's directory again.
func TestOldLaunchNeverResurrectsDeletedPod(t *testing.T) {
	t.Parallel()
	env := testEnv(t)
	old := newTestBackend(t, env)
	p := newPod("init-loop", busybox("main", "echo never"))
	p.Spec.InitContainers = []v1.Container{busybox("setup", "exit 1")}
	p.Spec.RestartPolicy = v1.RestartPolicyAlways
	create(t, old, p)
	waitForOn(t, old, p, time.Minute, "an init restart", func(st interlink.PodStatus) bool {
		return len(st.InitContainers) == 1 && st.InitContainers[0].RestartCount >= 1
	})

	uid := string(p.UID)
	old.mu.Lock()
	oldLaunch, ok := old.running[uid]
	old.mu.Unlock()
	if !ok {
		t.Fatal("the old backend runs no launch for the pod, whose init container it keeps retrying")
	}

	replacement := newTestBackend(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := replacement.Delete(ctx, backend.DeleteRequest{Pod: p}); err != nil {
		t.Fatal(err)
	}
	// The old launch, at its next retry (2 s, then 4 s), finds the record gone and ends: once it has ended,
	// nothing of it can make the pod again.
	select {
	case <-oldLaunch.done:
	case <-ctx.Done():
		t.Fatal("the old backend's launch still runs a minute after the pod was deleted")
	}
	ctrs, err := old.api.ContainerList(ctx, old.podLabels(uid))
	if err != nil {
		t.Fatal(err)
	}
	pods, err := old.api.PodList(ctx, old.podLabels(uid))
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs) != 0 || len(pods) != 0 {
		t.Errorf("the deleted pod is back on the engine: %d containers, %d pods", len(ctrs), len(pods))
	}
	if _, err := os.Stat(old.podDir(uid)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the deleted pod's directory is back: %v", err)
	}
}
