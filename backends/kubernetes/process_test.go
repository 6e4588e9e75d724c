package kubernetes

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// TestLaunchedBinary runs the real binary as the dispatcher does (go-plugin, gRPC) on the lab's cluster: it
// describes itself, reports capacity, and runs a pod to its end with its log.
func TestLaunchedBinary(t *testing.T) {
	t.Parallel()
	r := newRemote(t)
	bin := labtest.BuildBackend(t, "./cmd/backend-kubernetes")
	env := backend.Env{Name: "kubernetes", Instance: "test-" + strings.ToLower(string(conformance.NewUID())[:8]),
		Config: r.config(nil), DataDir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := backend.Launch(ctx, backend.LaunchConfig{Name: env.Name, Path: bin, Env: env,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	t.Cleanup(func() { conformance.DeleteAll(t, p, time.Second) })
	d, err := p.Describe(ctx)
	if err != nil || d.Name != Kind || !strings.HasPrefix(d.Engine, "Kubernetes v") {
		t.Fatalf("Describe: %+v, %v", d, err)
	}
	c, err := p.Capacity(ctx)
	if err != nil || c.CPUMilli == nil || c.Pods == nil {
		t.Fatalf("Capacity of the lab's virtual node: %+v, %v", c, err)
	}
	pod := conformance.NewPod("launched", conformance.ShellContainer("main", "echo over-the-wire"))
	pod.Spec.RestartPolicy = v1.RestartPolicyNever
	res, err := p.Create(ctx, conformance.NewCreateRequest(pod, conformance.Objects{}))
	if err != nil {
		t.Fatal(err)
	}
	conformance.WaitForPhase(t, p, pod, 4*time.Minute, v1.PodSucceeded)
	var logs strings.Builder
	if err := p.Logs(ctx, backend.LogRequest{LogStruct: logStruct(pod, "main"), RemoteID: res.RemoteID}, &logs); err != nil {
		t.Fatal(err)
	}
	if logs.String() != "over-the-wire\n" {
		t.Errorf("log %q", logs.String())
	}
	if err := p.Delete(ctx, backend.DeleteRequest{Pod: pod, RemoteID: res.RemoteID, GracePeriod: time.Second}); err != nil {
		t.Fatal(err)
	}
}
