package slurm

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// labConfig is the config the lab tests run with: Podman inside the jobs, small default job sizes so that
// many jobs fit on the lab's node at once, and short restart back-offs.
func labConfig(t testing.TB) Config {
	return Config{
		Root:              labRoot(t),
		Runtime:           RuntimePodman,
		Runtimes:          []string{RuntimeNone},
		DefaultMemory:     "200M",
		RestartBackoff:    Duration(time.Second),
		MaxRestartBackoff: Duration(2 * time.Second),
		PullRetries:       2,
		FollowInterval:    Duration(100 * time.Millisecond),
		KillWait:          Duration(30 * time.Second), // the lab's slurm.conf
		Shim:              shimtest.Build(t),
	}
}

// labRoot is a pod directory root for one test; jobs of the test are cancelled before it is removed.
func labRoot(t testing.TB) string {
	dir, err := os.MkdirTemp("", "slurm-backend-test-")
	if err != nil {
		t.Fatal(err)
	}
	// pod.RemoveDir: a pinned subPath left mounted below must not let the removal reach into its volume.
	t.Cleanup(func() { _ = pod.RemoveDir(dir) })
	return dir
}

// newLabBackend requires the lab's SLURM and Podman and returns a backend on them.
func newLabBackend(t testing.TB, cfg Config) *Backend {
	t.Helper()
	labtest.RequireSLURM(t)
	labtest.RequirePodman(t)
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBackend(backend.Env{Name: "slurm", Instance: "test", Config: raw, DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("newBackend: %v", err)
	}
	return b
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createPod creates p and deletes it when the test ends.
func createPod(t testing.TB, b *Backend, p *v1.Pod, objs conformance.Objects) string {
	t.Helper()
	res, err := b.Create(ctxFor(t, time.Minute), conformance.NewCreateRequest(p, objs))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.Delete(ctx, backend.DeleteRequest{Pod: p, RemoteID: res.RemoteID, GracePeriod: time.Second}); err != nil {
			t.Errorf("cleanup: Delete of pod %s: %v", p.Name, err)
		}
	})
	if err != nil {
		t.Fatalf("Create of pod %s: %v", p.Name, err)
	}
	return res.RemoteID
}

func statusOf(t testing.TB, b *Backend, p *v1.Pod) interlink.PodStatus {
	t.Helper()
	sts, err := b.Status(ctxFor(t, time.Minute), []*v1.Pod{p})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(sts) != 1 {
		t.Fatalf("Status returned %d statuses for 1 pod", len(sts))
	}
	return sts[0]
}

// waitFor polls the pod's status until ok says so, failing after timeout with the last status.
func waitFor(t testing.TB, b *Backend, p *v1.Pod, timeout time.Duration, what string, ok func(interlink.PodStatus) bool) interlink.PodStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var st interlink.PodStatus
	for {
		st = statusOf(t, b, p)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			data, _ := json.MarshalIndent(st, "", "  ")
			t.Fatalf("pod %s: %s did not happen within %s; last status:\n%s\njob output:\n%s", p.Name, what, timeout, data, jobOutput(b, p))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func jobOutput(b *Backend, p *v1.Pod) string {
	data, _ := os.ReadFile(filepath.Join(b.podDir(string(p.UID)), jobOutFile))
	return string(data)
}

func findStatus(sts []v1.ContainerStatus, name string) *v1.ContainerStatus {
	for i := range sts {
		if sts[i].Name == name {
			return &sts[i]
		}
	}
	return nil
}

func logsOf(t testing.TB, b *Backend, p *v1.Pod, container string, opts interlink.LogOpts) string {
	t.Helper()
	var sb strings.Builder
	err := b.Logs(ctxFor(t, time.Minute), backend.LogRequest{LogStruct: interlink.LogStruct{
		Namespace: p.Namespace, PodUID: string(p.UID), PodName: p.Name, ContainerName: container, Opts: opts}}, &sb)
	if err != nil {
		t.Fatalf("Logs of %s/%s: %v", p.Name, container, err)
	}
	return sb.String()
}

// minJobAge reads the cluster's MinJobAge ("MinJobAge = 300 sec") from scontrol.
func minJobAge(t testing.TB) time.Duration {
	t.Helper()
	out, err := exec.Command("scontrol", "show", "config").Output()
	if err != nil {
		t.Fatalf("scontrol show config: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "MinJobAge" {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			break
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("MinJobAge %q is not a number of seconds", v)
		}
		return time.Duration(n) * time.Second
	}
	t.Fatalf("scontrol show config prints no MinJobAge:\n%s", out)
	return 0
}
