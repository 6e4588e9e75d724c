package slurm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// The testdata files are `squeue --json` and `sinfo --json` captured on the lab's SLURM 22.05.8 with jobs in
// every state the backend tells apart.

func TestParseSqueueCaptured(t *testing.T) {
	data, err := os.ReadFile("testdata/squeue-22.05.8-final.json")
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := parseSqueue(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		name, state, reason string
		class               int
		exit                int64
	}{
		"4": {"cap-resources", "CANCELLED", "PartitionConfig", jobOver, 0},
		"6": {"cap-failed", "FAILED", "NonZeroExitCode", jobOver, 768},
		"7": {"cap-timeout", "TIMEOUT", "TimeLimit", jobOver, 15},
		"1": {"wrap", "COMPLETED", "None", jobOver, 0},
	}
	for id, w := range want {
		j := jobs[id]
		if j == nil {
			t.Errorf("job %s missing", id)
			continue
		}
		if j.Name != w.name || j.JobState != w.state || j.StateReason != w.reason || stateClass(j.JobState) != w.class ||
			j.ExitCode == nil || *j.ExitCode != w.exit {
			t.Errorf("job %s = %+v, want %+v", id, j, w)
		}
	}
	if j := jobs["7"]; j.EndTime-j.StartTime < 60 {
		t.Errorf("the timed-out job ran %d s, want at least its one-minute limit", j.EndTime-j.StartTime)
	}

	data, err = os.ReadFile("testdata/squeue-22.05.8-mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	jobs, err = parseSqueue(data)
	if err != nil {
		t.Fatal(err)
	}
	for id, w := range map[string][2]string{"4": {"PENDING", "PartitionConfig"}, "5": {"RUNNING", "None"},
		"9": {"PENDING", "Resources"}, "10": {"PENDING", "Priority"}, "2": {"CANCELLED", "JobHeldUser"}} {
		if j := jobs[id]; j == nil || j.JobState != w[0] || j.StateReason != w[1] {
			t.Errorf("job %s = %+v, want %v", id, j, w)
		}
	}
	if stateClass("PENDING") != jobPending || stateClass("RUNNING") != jobActive || stateClass("COMPLETING") != jobActive {
		t.Errorf("state classes are wrong")
	}
}

func TestParseSqueueNewerShapes(t *testing.T) {
	// OpenAPI v0.0.39 and later: numbers as objects, job_state as a list.
	data := []byte(`{"jobs": [{"job_id": 42, "name": "x", "job_state": ["PENDING", "REQUEUED"], "state_reason": "Priority",
		"start_time": {"set": true, "infinite": false, "number": 0}, "exit_code": {"status": ["PENDING"], "return_code": {"number": 0}}}]}`)
	jobs, err := parseSqueue(data)
	if err != nil {
		t.Fatal(err)
	}
	if j := jobs["42"]; j == nil || j.JobState != "PENDING" || j.StateReason != "Priority" {
		t.Errorf("job 42 = %+v", j)
	}
	if _, err := parseSqueue([]byte("squeue: error: oops")); err == nil {
		t.Errorf("non-JSON output was accepted")
	}
}

func TestParseSinfoCaptured(t *testing.T) {
	data, err := os.ReadFile("testdata/sinfo-22.05.8.json")
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := parseSinfo(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].Name != "vm" || nodes[0].CPUs != 2 || nodes[0].RealMemory != 24105 || !nodes[0].usable() {
		t.Fatalf("nodes = %+v", nodes)
	}
	cpu, mem, gpus, n := nodeCapacity(nodes, nil)
	if n != 1 || cpu != 2000 || mem != 24105<<20 || gpus != 0 {
		t.Errorf("capacity = %d mCPU, %d bytes, %d GPUs from %d nodes", cpu, mem, gpus, n)
	}
	if _, _, _, n := nodeCapacity(nodes, []string{"gpu"}); n != 0 {
		t.Errorf("a partition filter did not apply")
	}
	if cpu, _, _, n := nodeCapacity([]sinfoNode{{State: "down", CPUs: 4, Partitions: []string{"debug"}}}, nil); n != 1 || cpu != 0 {
		t.Errorf("a down node: %d mCPU from %d nodes, want 0 from 1", cpu, n)
	}
	drained := sinfoNode{State: "idle", StateFlags: []string{"DRAIN"}}
	down := sinfoNode{State: "down*"}
	if drained.usable() || down.usable() {
		t.Errorf("drained or down nodes count as usable")
	}
	if g := gresGPUs("gpu:a100:2(S:0-1),gpu:v100:1,mps:100"); g != 3 {
		t.Errorf("gresGPUs = %d, want 3", g)
	}
}

// TestStatusFromFiles builds a pod directory as a job leaves it and reads statuses from it, with and
// without squeue's word on the job.
func TestStatusFromFiles(t *testing.T) {
	b := offlineBackend(t, Config{Runtime: RuntimePodman})
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: types.UID("uid-1")},
		Spec: v1.PodSpec{InitContainers: []v1.Container{{Name: "init"}}, Containers: []v1.Container{{Name: "a"}, {Name: "b"}}}}
	dir := b.podDir("uid-1")
	rec := &podRecord{UID: "uid-1", Namespace: "ns", Name: "p", JobID: "77", InitContainers: []string{"init"}, Containers: []string{"a", "b"}}
	for _, c := range []string{"init", "a", "b"} {
		if err := os.MkdirAll(filepath.Join(dir, containersDir, c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeRecord(dir, rec); err != nil {
		t.Fatal(err)
	}
	write := func(rel, text string) {
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("containers/init/state", "terminated 0 1700000000.5 1700000001.25 0 -\n")
	write("containers/a/state", "running 1700000002.000001 2\n")
	write("containers/a/last", "1 1700000001.5 1700000001.75 -\n")
	write("containers/b/state", "waiting CrashLoopBackOff 0\n")

	running := map[string]*squeueJob{"77": {JobID: 77, JobState: "RUNNING", WorkDir: dir}}
	st := b.podStatus(p, rec, running, nil)
	a := st.Containers[0]
	if a.State.Running == nil || !a.State.Running.StartedAt.Time.Equal(time.Unix(1700000002, 1000)) || a.RestartCount != 2 ||
		a.LastTerminationState.Terminated == nil || a.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("container a = %+v", a)
	}
	if w := st.Containers[1].State.Waiting; w == nil || w.Reason != "CrashLoopBackOff" {
		t.Errorf("container b = %+v", st.Containers[1].State)
	}
	if pod.Phase(st) != v1.PodRunning {
		t.Errorf("phase = %s", pod.Phase(st))
	}

	// A job id SLURM reused for a job in another directory is not this pod's job.
	other := map[string]*squeueJob{"77": {JobID: 77, JobState: "PENDING", StateReason: "Priority", WorkDir: "/elsewhere"}}
	if st := b.podStatus(p, rec, other, nil); st.Containers[0].State.Waiting != nil {
		t.Errorf("another job's pending state was taken for this pod's")
	}

	// The job timed out: SLURM said so once; the running container ends with reason TIMEOUT, from the
	// recorded state even after SLURM forgot the job.
	write(terminatingFile, "")
	timeout := map[string]*squeueJob{"77": {JobID: 77, JobState: "TIMEOUT", StateReason: "TimeLimit", WorkDir: dir, EndTime: 1700000100}}
	_ = b.podStatus(p, rec, timeout, nil)
	st = b.podStatus(p, rec, map[string]*squeueJob{}, nil)
	for _, c := range st.Containers {
		if c.State.Terminated == nil || c.State.Terminated.Reason != "TIMEOUT" || c.State.Terminated.ExitCode != 137 {
			t.Errorf("container %s after the timeout = %+v", c.Name, c.State)
		}
	}
	if pod.Phase(st) != v1.PodFailed {
		t.Errorf("phase = %s, want Failed", pod.Phase(st))
	}

	// squeue failing keeps a pod as its files say, never ends it.
	if err := os.Remove(filepath.Join(dir, jobStateFile)); err != nil {
		t.Fatal(err)
	}
	st = b.podStatus(p, rec, nil, exec.ErrNotFound)
	if st.Containers[0].State.Running == nil {
		t.Errorf("without squeue the running container became %+v", st.Containers[0].State)
	}

	// Gone from the queue with no record of how it ended: the containers end, saying what the job printed.
	write(jobOutFile, "/bin/bash: line 9: podman: command not found\n")
	st = b.podStatus(p, rec, map[string]*squeueJob{}, nil)
	if term := st.Containers[0].State.Terminated; term == nil || term.Reason != pod.ReasonUnknown || !strings.Contains(term.Message, "podman: command not found") {
		t.Errorf("vanished job: %+v", st.Containers[0].State)
	}

	// An unknown pod is NotFound, not an error.
	unknown := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "nope"}, Spec: v1.PodSpec{Containers: []v1.Container{{Name: "x"}}}}
	sts, err := b.Status(ctxFor(t, time.Minute), []*v1.Pod{unknown})
	if err != nil || sts[0].Containers[0].State.Terminated == nil || sts[0].Containers[0].State.Terminated.Reason != pod.ReasonNotFound {
		t.Errorf("unknown pod: %+v, %v", sts, err)
	}
	if sts, err := b.Status(ctxFor(t, time.Minute), nil); err != nil || sts == nil || len(sts) != 0 {
		t.Errorf("empty batch: %v, %v", sts, err)
	}
}
