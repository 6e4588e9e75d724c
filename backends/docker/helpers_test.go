package docker

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"k8s.io/apimachinery/pkg/api/resource"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// testEnv is the Env of a test's backend: its own instance id, so that tests never see each other's pods.
func testEnv(t testing.TB, extra map[string]any) backend.Env {
	cfg := map[string]any{"pause_binary": labtest.BuildBinary(t, labtest.PausePackage),
		"shim": labtest.BuildBinary(t, labtest.ShimPackage), "restart_backoff": "1s", "restart_backoff_max": "4s"}
	for k, v := range extra {
		cfg[k] = v
	}
	raw, _ := json.Marshal(cfg)
	return backend.Env{Name: "docker", Instance: "test-" + string(conformance.NewUID())[:8], Config: raw, DataDir: t.TempDir()}
}

// newBackend starts a backend on the lab's Docker Engine; every pod it still has is deleted at the end.
func newBackend(t *testing.T, extra map[string]any) *Backend {
	t.Helper()
	labtest.RequireDocker(t)
	return startBackend(t, testEnv(t, extra))
}

func startBackend(t *testing.T, env backend.Env) *Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := NewBackend(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conformance.DeleteAll(t, b, time.Second)
		b.Close()
	})
	return b
}

func create(t *testing.T, b *Backend, p *v1.Pod, objs conformance.Objects) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := b.Create(ctx, conformance.NewCreateRequest(p, objs)); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

func ptrQ(s string) *resource.Quantity { q := resource.MustParse(s); return &q }

func waitPhase(t *testing.T, b *Backend, p *v1.Pod, phases ...v1.PodPhase) interlink.PodStatus {
	t.Helper()
	return conformance.WaitForPhase(t, b, p, 2*time.Minute, phases...)
}

func waitFor(t *testing.T, b *Backend, p *v1.Pod, what string, cond func(interlink.PodStatus) bool) interlink.PodStatus {
	t.Helper()
	return conformance.WaitFor(t, b, p, 2*time.Minute, what, cond)
}

func logsOf(t *testing.T, b *Backend, p *v1.Pod, c string, opts interlink.LogOpts) string {
	t.Helper()
	var buf labtest.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := b.Logs(ctx, backend.LogRequest{LogStruct: interlink.LogStruct{Namespace: p.Namespace, PodUID: string(p.UID),
		PodName: p.Name, ContainerName: c, Opts: opts}}, &buf)
	if err != nil {
		t.Fatalf("Logs of %s: %v", c, err)
	}
	return buf.String()
}

// podContainersOf lists every container of the pod on the engine (whoever made it).
func podContainersOf(t *testing.T, b *Backend, uid string) []container.Summary {
	t.Helper()
	cs, err := b.cli.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: b.ownFilter(pod.LabelPodUID, uid)})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func status(st interlink.PodStatus, name string) v1.ContainerStatus {
	for _, s := range append(st.InitContainers, st.Containers...) {
		if s.Name == name {
			return s
		}
	}
	return v1.ContainerStatus{}
}
