package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim/shimtest"
)

// TestPluginRunsAPod builds the binary, launches it as the dispatcher does (go-plugin, versioned handshake)
// and runs one pod through it on the lab's SLURM, then reads the backend's squeue counter from its metrics.
func TestPluginRunsAPod(t *testing.T) {
	labtest.RequireSLURM(t)
	labtest.RequirePodman(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "backend-slurm")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg, _ := json.Marshal(map[string]any{"runtime": "podman", "default_memory": "200M", "root": filepath.Join(dir, "pods"), "shim": shimtest.Build(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	proc, err := backend.Launch(ctx, backend.LaunchConfig{Name: "slurm", Path: bin,
		Env: backend.Env{Instance: "test", Config: cfg, DataDir: dir}})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	defer proc.Stop()
	desc, err := proc.Describe(ctx)
	if err != nil || desc.Name != "slurm" || !strings.Contains(desc.Engine, "slurm") {
		t.Fatalf("Describe = %+v, %v", desc, err)
	}

	p := conformance.NewPod("plugin", conformance.ShellContainer("main", "echo through the plugin"))
	res, err := proc.Create(ctx, conformance.NewCreateRequest(p, conformance.Objects{}))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer proc.Delete(context.Background(), backend.DeleteRequest{Pod: p, RemoteID: res.RemoteID, GracePeriod: time.Second})
	st := conformance.WaitForPhase(t, proc, p, 2*time.Minute, v1.PodSucceeded)
	if st.JobID != res.RemoteID {
		t.Errorf("JID %q, want %q", st.JobID, res.RemoteID)
	}
	var logs strings.Builder
	if err := proc.Logs(ctx, backend.LogRequest{LogStruct: interlink.LogStruct{Namespace: p.Namespace,
		PodUID: string(p.UID), PodName: p.Name, ContainerName: "main"}}, &logs); err != nil || logs.String() != "through the plugin\n" {
		t.Errorf("Logs = %q, %v", logs.String(), err)
	}

	// An invalid pod is refused as invalid across the plugin boundary, with the field named.
	bad := conformance.NewPod("bad", conformance.ShellContainer("main", "true"))
	bad.Annotations["slurm-job.vk.io/flavor"] = "nope"
	if _, err := proc.Create(ctx, conformance.NewCreateRequest(bad, conformance.Objects{})); backend.KindOf(err) != backend.KindInvalid ||
		!strings.Contains(err.Error(), "slurm-job.vk.io/flavor") {
		t.Errorf("Create of a pod with an unknown flavor = %v, want invalid naming the annotation", err)
	}
	if sts, err := proc.Status(ctx, []*v1.Pod{bad}); err != nil || sts[0].Containers[0].State.Terminated == nil ||
		sts[0].Containers[0].State.Terminated.Reason != pod.ReasonNotFound {
		t.Errorf("Status of the refused pod = %+v, %v", sts, err)
	}

	mfs, err := proc.Metrics(ctx)
	if err != nil {
		t.Fatalf("Metrics: %v", err)
	}
	var squeue float64
	for _, mf := range mfs {
		if mf.GetName() == "interlink_backend_slurm_squeue_invocations_total" {
			squeue = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if squeue < 1 {
		t.Errorf("interlink_backend_slurm_squeue_invocations_total = %v, want the status calls counted", squeue)
	}
}

// The version stamped at build time (-X main.version, as make build and deploy/run.sh do) is the version
// the backend reports to the dispatcher through Describe. The backend needs no SLURM to describe itself.
func TestVersionStampReachesDescribe(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "backend-slurm")
	const stamp = "v9.8.7-stamp-test"
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+stamp, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg, _ := json.Marshal(map[string]any{"root": filepath.Join(dir, "pods"), "shim": "/bin/true"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	proc, err := backend.Launch(ctx, backend.LaunchConfig{Name: "slurm", Path: bin,
		Env: backend.Env{Instance: "test", Config: cfg, DataDir: dir}})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	defer proc.Stop()
	if got := proc.Description().Version; got != stamp {
		t.Fatalf("the backend reports version %q, want the build's stamp %q", got, stamp)
	}
}
