package docker

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/docker/docker/api/types/volume"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// TestRestartedBackendReportsSameStatus stops a backend (as a crash would: nothing is cleaned up) and starts
// a new one over the same engine and data directory: every pod keeps its status, and supervision goes on.
func TestRestartedBackendReportsSameStatus(t *testing.T) {
	t.Parallel()
	b1 := newBackend(t, nil)
	running := conformance.NewPod("running", conformance.ShellContainer("main", "sleep 60"))
	done := conformance.NewPod("done", conformance.ShellContainer("main", "echo ok"))
	failed := conformance.WithInit(conformance.NewPod("failed", conformance.ShellContainer("main", "true")),
		conformance.ShellContainer("init", "exit 7"))
	flaky := conformance.NewPod("flaky", conformance.ShellContainer("main", "exit 2"))
	flaky.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	pods := []*v1.Pod{running, done, failed, flaky}
	for _, p := range pods {
		create(t, b1, p, conformance.Objects{})
	}
	waitPhase(t, b1, running, v1.PodRunning)
	waitPhase(t, b1, done, v1.PodSucceeded)
	waitPhase(t, b1, failed, v1.PodFailed)
	waitFor(t, b1, flaky, "a restart", func(st interlink.PodStatus) bool { return status(st, "main").RestartCount >= 1 })

	before, err := b1.Status(context.Background(), pods[:3])
	if err != nil {
		t.Fatal(err)
	}
	recs1, _ := b1.List(context.Background())
	// A crash: the backend's supervision stops, without any clean-up.
	b1.cancel()
	b1.stopAllRunners()

	b2 := startBackend(t, b1.env)
	after, err := b2.Status(context.Background(), pods[:3])
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, before), mustJSON(t, after); a != b {
		t.Errorf("statuses differ after a restart:\nbefore %s\nafter  %s", a, b)
	}
	recs2, _ := b2.List(context.Background())
	if len(recs2) != len(recs1) || len(recs2) != 4 {
		t.Errorf("List before %d pods, after %d", len(recs1), len(recs2))
	}
	for _, r := range recs2 {
		if r.UID == string(running.UID) && (r.Phase != v1.PodRunning || r.Name != running.Name || r.RemoteID == "") {
			t.Errorf("List record of the running pod: %+v", r)
		}
	}
	// The new backend carries on supervising: the flaky pod keeps being restarted.
	st := conformance.StatusOf(t, b2, flaky, time.Minute)
	n := status(st, "main").RestartCount
	waitFor(t, b2, flaky, "another restart", func(st interlink.PodStatus) bool { return status(st, "main").RestartCount > n })
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func volumeFilter(b *Backend, uid string) volume.ListOptions {
	return volume.ListOptions{Filters: b.ownFilter(pod.LabelPodUID, uid)}
}

func callCount(t *testing.T, b *Backend, call string) uint64 {
	mfs, err := b.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "interlink_backend_docker_engine_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "call" && l.GetValue() == call {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// An older backend process still running beside a new one on the same data directory (as one whose
// dispatcher was SIGKILLed did, before backends died with their dispatcher) never brings back a pod the
// new one deleted: its runner finds the pod's record gone and ends, re-creating neither the pause
// container, nor the containers, nor the pod's directory.
func TestOldRunnerNeverResurrectsDeletedPod(t *testing.T) {
	t.Parallel()
	old := newBackend(t, nil)
	p := conformance.NewPod("crashloop", conformance.ShellContainer("main", "exit 1"))
	p.Spec.RestartPolicy = v1.RestartPolicyAlways
	create(t, old, p, conformance.Objects{})
	waitFor(t, old, p, "a restart", func(st interlink.PodStatus) bool { return status(st, "main").RestartCount >= 1 })

	replacement := startBackend(t, old.env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := replacement.Delete(ctx, backend.DeleteRequest{Pod: p}); err != nil {
		t.Fatal(err)
	}
	// The old runner notices within its poll interval (30s) at the latest, sooner when a container of its
	// pod stops or its restart back-off (at most 4s here) ends; whatever it does meanwhile, it makes nothing.
	deadline := time.Now().Add(pollInterval + 15*time.Second)
	for {
		old.mu.Lock()
		left := old.runners[string(p.UID)]
		old.mu.Unlock()
		if left == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old backend still supervises the deleted pod after %s", pollInterval+15*time.Second)
		}
		time.Sleep(200 * time.Millisecond)
	}
	pc, err := old.listPod(ctx, string(p.UID))
	if err != nil {
		t.Fatal(err)
	}
	if pc.pause != nil || len(pc.runs) != 0 {
		t.Errorf("the deleted pod is back on the engine: pause %v, runs %v", pc.pause != nil, pc.runs)
	}
	if _, err := os.Stat(old.podDir(string(p.UID))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the deleted pod's directory is back: %v", err)
	}
}
