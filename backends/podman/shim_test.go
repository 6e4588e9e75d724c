package podman

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// Probes run by the shim show in Status: a running container is not ready until its readiness probe passes,
// and a liveness probe failing past its threshold ends the container with the shim's reason (137,
// Unhealthy); the engine waits grace + 5 s before killing a shim.
func TestProbesThroughShim(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	// The readiness probe passes once the test opens a gate (a file in a hostPath directory), so that "not
	// ready before" holds however late the first status comes on a busy machine. Each probe leaves a line in
	// the gate directory, so that the test sees the probes fail before it looks.
	gate := t.TempDir()
	ready := busybox("ready", "sleep 300")
	ready.VolumeMounts = []v1.VolumeMount{{Name: "gate", MountPath: "/gate"}}
	ready.ReadinessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{
		Command: []string{"sh", "-c", "echo probed >> /gate/probes; test -f /gate/open"}}},
		PeriodSeconds: 1, FailureThreshold: 1}
	sick := busybox("sick", "echo alive; sleep 300")
	sick.LivenessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"false"}}},
		InitialDelaySeconds: 1, PeriodSeconds: 1, FailureThreshold: 2}
	grace := int64(3)
	p := newPod("probes", ready, sick)
	p.Spec.TerminationGracePeriodSeconds = &grace
	p.Spec.Volumes = []v1.Volume{{Name: "gate", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: gate}}}}
	create(t, b, p)

	st := waitFor(t, b, p, time.Minute, "ready to run", func(st interlink.PodStatus) bool { return st.Containers[0].State.Running != nil })
	labtest.WaitForLines(t, filepath.Join(gate, "probes"), 2, time.Minute) // two failing probes
	if st = status(t, b, p); st.Containers[0].State.Running == nil || st.Containers[0].Ready {
		t.Errorf("ready: %s, ready %v; want running and not ready before its readiness probe passed", stateString(st.Containers[0]), st.Containers[0].Ready)
	}
	if err := os.WriteFile(filepath.Join(gate, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, p, 30*time.Second, "ready to become ready", func(st interlink.PodStatus) bool { return st.Containers[0].Ready })

	st = waitFor(t, b, p, time.Minute, "sick to be killed", func(st interlink.PodStatus) bool { return st.Containers[1].State.Terminated != nil })
	term := st.Containers[1].State.Terminated
	if term.ExitCode != shim.ExitKilled || term.Reason != shim.ReasonUnhealthy || !strings.Contains(term.Message, "Liveness probe failed") {
		t.Fatalf("sick: %s, want terminated 137 Unhealthy with the probe's message", stateString(st.Containers[1]))
	}
	if ph := pod.Phase(st); ph != v1.PodRunning {
		t.Errorf("phase %s, want Running: the sibling must not be stopped", ph)
	}
	ins, err := b.api.ContainerInspect(context.Background(), containerName(podmanName(p), "ready"))
	if err != nil {
		t.Fatal(err)
	}
	if ins.Config.StopTimeout != uint(grace)+shimStopMargin {
		t.Errorf("the engine's stop timeout is %d s, want the grace period plus %d s", ins.Config.StopTimeout, shimStopMargin)
	}
	if _, err := os.Stat(filepath.Join(b.shimDir(string(p.UID), "ready"), shim.SpecFile)); err != nil {
		t.Errorf("no shim spec in the container's state directory: %v", err)
	}
}

// A backend without its shim does not start, and says which config key to set.
func TestMissingShimFailsStart(t *testing.T) {
	t.Parallel()
	env := testEnv(t)
	env.Config = []byte(`{"shim": "/nonexistent/interlink-shim"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := New(ctx, env); err == nil || !strings.Contains(err.Error(), "backends.podman.config.shim") {
		t.Fatalf("New without a shim = %v, want an error naming the key backends.podman.config.shim", err)
	}
	env.Config = nil // default: next to the test binary, where there is none
	if _, err := New(ctx, env); err == nil || !strings.Contains(err.Error(), "backends.podman.config.shim") {
		t.Fatalf("New without a shim next to the executable = %v, want an error naming the key backends.podman.config.shim", err)
	}
}
