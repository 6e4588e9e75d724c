package docker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

func TestLifecycleHooks(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	out := t.TempDir()
	c := conformance.ShellContainer("main", `while [ ! -f /tmp/poststart ]; do sleep 0.1; done; cat /tmp/poststart; sleep 60`)
	c.Lifecycle = &v1.Lifecycle{
		// Written beside and renamed: the command, looking as the file appears, must not read it empty.
		PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo postStart ran > /tmp/poststart.new && mv /tmp/poststart.new /tmp/poststart"}}},
		PreStop:   &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo preStop ran > /out/prestop"}}},
	}
	c = conformance.Mount(c, "out", "/out", "", false)
	p := conformance.WithVolumes(conformance.NewPod("hooks", c),
		v1.Volume{Name: "out", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: out}}})
	create(t, b, p, conformance.Objects{})
	waitPhase(t, b, p, v1.PodRunning)
	waitFor(t, b, p, "postStart's output", func(interlink.PodStatus) bool {
		return logsOf(t, b, p, "main", interlink.LogOpts{}) == "postStart ran\n"
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Delete(ctx, backend.DeleteRequest{Pod: p, GracePeriod: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(out, "prestop")); err != nil || string(got) != "preStop ran\n" {
		t.Errorf("preStop did not run before the container was stopped: %q, %v", got, err)
	}
}
