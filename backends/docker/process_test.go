package docker

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

func launch(t *testing.T, env backend.Env) *backend.Process {
	t.Helper()
	bin := labtest.BuildBackend(t, "./cmd/backend-docker") // before the launch's deadline: a cold build takes minutes
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := backend.Launch(ctx, backend.LaunchConfig{Name: env.Name, Path: bin, Env: env,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// TestKilledBackendProcessReportsSameStatus runs the real binary as the dispatcher does (go-plugin, gRPC),
// kills it with SIGKILL mid-run, starts it again over the same engine and data directory, and checks that
// every pod it ran keeps its status.
func TestKilledBackendProcessReportsSameStatus(t *testing.T) {
	t.Parallel()
	labtest.RequireDocker(t)
	inProcess := testEnv(t, nil)
	env := inProcess
	var cfg map[string]any
	json.Unmarshal(env.Config, &cfg)
	// The binary finds bin/pause and bin/interlink-shim beside itself, as after make build.
	delete(cfg, "pause_binary")
	delete(cfg, "shim")
	env.Config, _ = json.Marshal(cfg)

	p1 := launch(t, env)
	running := conformance.NewPod("running", conformance.ShellContainer("main", "echo started; sleep 60"))
	done := conformance.NewPod("done", conformance.ShellContainer("main", "echo ok"))
	failed := conformance.NewPod("failed", conformance.ShellContainer("main", "exit 5"))
	pods := []*v1.Pod{running, done, failed}
	for _, p := range pods {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, err := p1.Create(ctx, conformance.NewCreateRequest(p, conformance.Objects{})); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	t.Cleanup(func() {
		b := startBackend(t, inProcess) // in process, to delete whatever is left
		for _, p := range pods {
			b.Delete(context.Background(), backend.DeleteRequest{Pod: p, GracePeriod: time.Second})
		}
	})
	conformance.WaitForPhase(t, p1, running, 2*time.Minute, v1.PodRunning)
	conformance.WaitForPhase(t, p1, done, 2*time.Minute, v1.PodSucceeded)
	conformance.WaitForPhase(t, p1, failed, 2*time.Minute, v1.PodFailed)
	before, err := p1.Status(context.Background(), pods)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p1.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p1.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the killed backend process did not exit")
	}

	p2 := launch(t, env)
	after, err := p2.Status(context.Background(), pods)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, before), mustJSON(t, after); a != b {
		t.Errorf("statuses differ after the backend was killed and restarted:\nbefore %s\nafter  %s", a, b)
	}
	var buf labtest.Buffer
	if err := p2.Logs(context.Background(), backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: string(running.UID),
		ContainerName: "main"}}, &buf); err != nil || buf.String() != "started\n" {
		t.Errorf("logs after the restart: %q, %v", buf.String(), err)
	}
	if err := p2.Delete(context.Background(), backend.DeleteRequest{Pod: running, GracePeriod: time.Second}); err != nil {
		t.Fatal(err)
	}
	st := conformance.StatusOf(t, p2, running, time.Minute)
	if term := st.Containers[0].State.Terminated; term == nil || term.Reason != "NotFound" {
		t.Errorf("status after delete: %+v", st.Containers[0].State)
	}
}
