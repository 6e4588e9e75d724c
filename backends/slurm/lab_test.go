package slurm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

func terminatedAll(st interlink.PodStatus) bool {
	if len(st.Containers) == 0 {
		return false
	}
	for _, c := range append(append([]v1.ContainerStatus{}, st.InitContainers...), st.Containers...) {
		if c.State.Terminated == nil {
			return false
		}
	}
	return true
}

func cpuLimit(c v1.Container, cpu string) v1.Container {
	if c.Resources.Limits == nil {
		c.Resources.Limits = v1.ResourceList{}
	}
	c.Resources.Limits[v1.ResourceCPU] = resource.MustParse(cpu)
	return c
}

// squeueJobOf returns the job SLURM lists under id, or nil.
func squeueJobOf(t testing.TB, b *Backend, id string) *squeueJob {
	t.Helper()
	jobs, err := b.querySqueue(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatalf("squeue: %v", err)
	}
	return jobs[id]
}

// TestLabSingleContainer runs one busybox container in a SLURM job with Podman and reads its exit code and log.
func TestLabSingleContainer(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	p := conformance.NewPod("single", conformance.ShellContainer("main", "echo hello from slurm; echo 'to stderr' >&2; exit 3"))
	jobID := createPod(t, b, p, conformance.Objects{})
	st := waitFor(t, b, p, 2*time.Minute, "terminated", terminatedAll)
	if st.JobID != jobID {
		t.Errorf("status JID = %q, want the job id %q", st.JobID, jobID)
	}
	term := st.Containers[0].State.Terminated
	if term.ExitCode != 3 || term.Reason != pod.ReasonError {
		t.Errorf("terminated = exit %d reason %q, want exit 3 reason Error", term.ExitCode, term.Reason)
	}
	if term.StartedAt.IsZero() || term.FinishedAt.Time.Before(term.StartedAt.Time) {
		t.Errorf("times: started %v finished %v", term.StartedAt, term.FinishedAt)
	}
	logs := logsOf(t, b, p, "main", interlink.LogOpts{})
	if !strings.Contains(logs, "hello from slurm\n") || !strings.Contains(logs, "to stderr\n") {
		t.Errorf("logs = %q, want both lines", logs)
	}
	if got := pod.Phase(st); got != v1.PodFailed {
		t.Errorf("phase = %s, want Failed", got)
	}
}

// TestLabInitFailureEndsJob: a failing init container ends the job; the regular container never runs and is
// reported terminated, so that the pod fails instead of staying Pending.
func TestLabInitFailureEndsJob(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	p := conformance.WithInit(conformance.NewPod("initfail", conformance.ShellContainer("main", "echo main ran")),
		conformance.ShellContainer("setup", "echo setting up; exit 4"))
	jobID := createPod(t, b, p, conformance.Objects{})
	st := waitFor(t, b, p, 2*time.Minute, "init failure reported", terminatedAll)
	if it := st.InitContainers[0].State.Terminated; it.ExitCode != 4 {
		t.Errorf("init container: exit %d, want 4", it.ExitCode)
	}
	if m := st.Containers[0].State.Terminated; m.ExitCode == 0 || !strings.Contains(m.Message, `init container "setup" failed`) {
		t.Errorf("main container: %+v, want a non-zero termination saying the init container failed", m)
	}
	dir := b.podDir(string(p.UID))
	deadline := time.Now().Add(time.Minute)
	for {
		if j := squeueJobOf(t, b, jobID); j == nil || stateClass(j.JobState) == jobOver {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is still in the queue a minute after its init container failed", jobID)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, containersDir, "main", "state")); err == nil {
		t.Errorf("the regular container ran after its init container failed")
	}
	if w := readWords(filepath.Join(dir, jobFinishedFile)); len(w) < 2 || w[1] != "4" {
		t.Errorf("job.finished = %q, want the init container's exit code 4", w)
	}
	if got := pod.Phase(st); got != v1.PodFailed {
		t.Errorf("phase = %s, want Failed", got)
	}
}

// TestLabParallelContainers: the regular containers of a pod run at the same time. Their recorded times
// (sub-second) prove it, where catching both running in one status could miss a short window on a busy
// machine.
func TestLabParallelContainers(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	p := conformance.NewPod("parallel",
		conformance.ShellContainer("a", "sleep 3; echo a"), conformance.ShellContainer("b", "sleep 3; echo b"))
	createPod(t, b, p, conformance.Objects{})
	st := waitFor(t, b, p, 3*time.Minute, "both terminated", terminatedAll)
	a, c := st.Containers[0].State.Terminated, st.Containers[1].State.Terminated
	if !a.StartedAt.Time.Before(c.FinishedAt.Time) || !c.StartedAt.Time.Before(a.FinishedAt.Time) {
		t.Errorf("the containers did not overlap: a %v–%v, b %v–%v", a.StartedAt, a.FinishedAt, c.StartedAt, c.FinishedAt)
	}
	if pod.Phase(st) != v1.PodSucceeded {
		t.Errorf("phase = %s, want Succeeded", pod.Phase(st))
	}
}

// TestLabPendingReason: a pod whose job SLURM keeps pending waits with SLURM's own reason, and its message says
// so: a job that may not start for an hour (--begin) waits with BeginTime, a job asking for more CPUs than the
// node has waits with the reason squeue gives for it. SLURM holds both jobs back whatever else runs, so the test
// needs neither the whole node nor the other tests to be idle, and runs beside them.
func TestLabPendingReason(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	c, err := b.Capacity(ctxFor(t, time.Minute))
	if err != nil || c.CPUMilli == nil {
		t.Fatalf("Capacity: %+v, %v", c, err)
	}
	cpus := *c.CPUMilli / 1000 // the single node's CPUs

	later := conformance.NewPod("later", conformance.ShellContainer("main", "true"))
	later.Annotations[AnnotationFlags] = "--begin=now+1hour"
	laterJob := createPod(t, b, later, conformance.Objects{})
	huge := conformance.NewPod("huge", cpuLimit(conformance.ShellContainer("main", "true"), strconv.FormatInt(2*cpus, 10)))
	hugeJob := createPod(t, b, huge, conformance.Objects{})

	// A job is pending with reason None until the scheduler has looked at it.
	st := waitFor(t, b, later, time.Minute, "pending with reason BeginTime", func(st interlink.PodStatus) bool {
		w := st.Containers[0].State.Waiting
		return w != nil && w.Reason == "BeginTime"
	})
	if w := st.Containers[0].State.Waiting; w.Message != "SLURM job "+laterJob+" is pending: BeginTime" {
		t.Errorf("message %q does not say why the job waits", w.Message)
	}
	hs := waitFor(t, b, huge, time.Minute, "pending with SLURM's reason", func(st interlink.PodStatus) bool {
		w := st.Containers[0].State.Waiting
		return w != nil && w.Reason != "" && w.Reason != "Pending" && w.Reason != pod.ReasonContainerCreating
	})
	w := hs.Containers[0].State.Waiting
	j := squeueJobOf(t, b, hugeJob)
	if j == nil || w.Reason != j.StateReason || w.Message != "SLURM job "+hugeJob+" is pending: "+j.StateReason {
		t.Errorf("huge pod waits with %q (%q), SLURM says %+v", w.Reason, w.Message, j)
	}
	t.Logf("a job asking for %d CPUs on the %d-CPU node waits with reason %s", 2*cpus, cpus, w.Reason)
}

// TestLabTimeout: a job that reaches its time limit reports its running container terminated with reason
// TIMEOUT. SLURM checks time limits about every 30 s, so this takes one to two minutes.
func TestLabTimeout(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for SLURM's one-minute time limit")
	}
	b := newLabBackend(t, labConfig(t))
	p := conformance.NewPod("timeout", conformance.ShellContainer("main", "echo started; sleep 600"))
	p.Annotations[AnnotationFlags] = "--time=1"
	createPod(t, b, p, conformance.Objects{})
	st := waitFor(t, b, p, 4*time.Minute, "terminated by the time limit", terminatedAll)
	term := st.Containers[0].State.Terminated
	if term.Reason != "TIMEOUT" || term.ExitCode == 0 || !strings.Contains(term.Message, "time limit") {
		t.Errorf("terminated = %+v, want reason TIMEOUT saying the time limit was reached", term)
	}
	if logs := logsOf(t, b, p, "main", interlink.LogOpts{}); logs != "started\n" {
		t.Errorf("logs = %q", logs)
	}
}

// TestLabPurgedJobAnsweredFromFiles: once SLURM has forgotten a finished job (MinJobAge, read from the
// cluster's config), its status and logs still come from the files the job wrote.
func TestLabPurgedJobAnsweredFromFiles(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for SLURM to purge a finished job (MinJobAge)")
	}
	b := newLabBackend(t, labConfig(t))
	p := conformance.NewPod("purged", conformance.ShellContainer("main", "echo done; exit 7"))
	jobID := createPod(t, b, p, conformance.Objects{})
	before := waitFor(t, b, p, 2*time.Minute, "terminated", terminatedAll)
	// slurmctld purges finished jobs older than MinJobAge on a periodic pass, a little after that age.
	wait := minJobAge(t) + 2*time.Minute
	deadline := time.Now().Add(wait)
	for squeueJobOf(t, b, jobID) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("SLURM still lists job %s after %v (MinJobAge + 2 minutes)", jobID, wait)
		}
		time.Sleep(time.Second)
	}
	after := statusOf(t, b, p)
	bt, at := before.Containers[0].State.Terminated, after.Containers[0].State.Terminated
	if at == nil || at.ExitCode != 7 || !at.StartedAt.Equal(&bt.StartedAt) || !at.FinishedAt.Equal(&bt.FinishedAt) {
		t.Errorf("after the purge: %+v, before: %+v", at, bt)
	}
	if logs := logsOf(t, b, p, "main", interlink.LogOpts{}); logs != "done\n" {
		t.Errorf("logs after the purge = %q", logs)
	}
}

// pipeWriter records when each write arrived.
type pipeWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	firsts map[string]time.Time
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		if _, ok := w.firsts[line]; !ok {
			w.firsts[line] = time.Now()
		}
	}
	return w.buf.Write(p)
}

// TestLabLogsFollow: Follow streams lines as the container prints them and ends when it ends; timestamps
// are those of each line's writing.
func TestLabLogsFollow(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	const n = 20 // lines, one second apart: on a machine busy compiling, the pod was seen running 7 s late
	p := conformance.NewPod("follow", conformance.ShellContainer("main", fmt.Sprintf("for i in $(seq 1 %d); do echo line $i; sleep 1; done", n)))
	createPod(t, b, p, conformance.Objects{})
	waitFor(t, b, p, 2*time.Minute, "running", func(st interlink.PodStatus) bool { return st.Containers[0].State.Running != nil })
	w := &pipeWriter{firsts: map[string]time.Time{}}
	start := time.Now()
	err := b.Logs(ctxFor(t, time.Minute), backend.LogRequest{LogStruct: interlink.LogStruct{
		Namespace: p.Namespace, PodUID: string(p.UID), PodName: p.Name, ContainerName: "main",
		Opts: interlink.LogOpts{Follow: true}}}, w)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	end := time.Now()
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if got := w.buf.String(); got != want.String() {
		t.Errorf("followed %q", got)
	}
	// Lines written before the follow began come at once; the last ones come as they are written.
	last := fmt.Sprintf("line %d", n)
	if first, lastAt := w.firsts["line 1"], w.firsts[last]; lastAt.Sub(first) < 2*time.Second {
		t.Errorf("lines came all at once (line 1 at %v, %s at %v): not streamed", first.Sub(start), last, lastAt.Sub(start))
	}
	st := statusOf(t, b, p)
	if st.Containers[0].State.Terminated == nil {
		t.Errorf("Follow returned (after %v) while the container still runs", end.Sub(start))
	}
	stamped := logsOf(t, b, p, "main", interlink.LogOpts{Timestamps: true})
	var times []time.Time
	for _, line := range strings.Split(strings.TrimSpace(stamped), "\n") {
		ts, _, _ := strings.Cut(line, " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("line %q has no RFC 3339 timestamp", line)
		}
		times = append(times, tm)
	}
	if len(times) != n || times[n-1].Sub(times[0]) < (n-2)*time.Second {
		t.Errorf("timestamps %v are not those of the lines' writing, one second apart", times)
	}
	since := logsOf(t, b, p, "main", interlink.LogOpts{SinceTime: times[n-2].Add(-time.Millisecond)})
	if wantSince := fmt.Sprintf("line %d\nline %d\n", n-1, n); since != wantSince {
		t.Errorf("SinceTime gave %q, want %q", since, wantSince)
	}
}

// TestLabDeleteRunning: deleting a running pod whose process ignores SIGTERM (a sleep as PID 1) stops it
// after the grace period, cancels the job, removes its container from the node and its directory.
func TestLabDeleteRunning(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	p := conformance.NewPod("delete", conformance.ShellContainer("main", "exec sleep 300"))
	jobID := createPod(t, b, p, conformance.Objects{})
	waitFor(t, b, p, 2*time.Minute, "running", func(st interlink.PodStatus) bool { return st.Containers[0].State.Running != nil })
	start := time.Now()
	if err := b.Delete(ctxFor(t, time.Minute), backend.DeleteRequest{Pod: p, RemoteID: jobID, GracePeriod: 2 * time.Second}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// The shim kills the sleep when the request's 2 s are over (not the pod's 30 s), and Delete cancels the
	// job outright 5 s past the grace should the stop not have ended it: on a loaded node that backstop may be
	// what ends it, so the bound is the request's grace, the backstop and some seconds of SLURM, well under
	// the pod's own 30 s.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Delete took %v for a 2 s grace period", d)
	}
	if _, err := os.Stat(b.podDir(string(p.UID))); !os.IsNotExist(err) {
		t.Errorf("the pod's directory is still there: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		j := squeueJobOf(t, b, jobID)
		out, _ := exec.Command("podman", "ps", "--all", "--quiet", "--filter", "name=il-"+string(p.UID)).Output()
		if (j == nil || stateClass(j.JobState) == jobOver) && len(bytes.TrimSpace(out)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after Delete: job %+v, podman containers %q", j, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if st := statusOf(t, b, p); st.Containers[0].State.Terminated == nil || st.Containers[0].State.Terminated.Reason != pod.ReasonNotFound {
		t.Errorf("status after delete = %+v, want NotFound", st.Containers[0].State)
	}
	if err := b.Delete(ctxFor(t, time.Minute), backend.DeleteRequest{Pod: p, RemoteID: jobID}); err != nil {
		t.Errorf("a second Delete: %v", err)
	}
}

// TestLabFlagsReachSLURM: the pod's shell-quoted flags reach sbatch intact (a comment with both kinds of
// quotes, a time limit in the short spelling).
func TestLabFlagsReachSLURM(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	p := conformance.NewPod("flags", conformance.ShellContainer("main", "sleep 30"))
	p.Annotations[AnnotationFlags] = `--comment='it'"'"'s "quoted" here' -t 5 --hold`
	jobID := createPod(t, b, p, conformance.Objects{})
	raw, err := exec.Command("squeue", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, `"comment": "it's \"quoted\" here"`) {
			found = true
		}
	}
	j := squeueJobOf(t, b, jobID)
	if !found || j == nil || j.StateReason != "JobHeldUser" {
		t.Errorf("SLURM did not get the pod's flags: comment found %v, job %+v", found, j)
	}
	st := statusOf(t, b, p)
	if w := st.Containers[0].State.Waiting; w == nil || w.Reason != "JobHeldUser" {
		t.Errorf("held job status = %+v", st.Containers[0].State)
	}
}

// TestLabCommandPrefix: every SLURM command runs through the configured prefix. The prefix here sets sbatch's
// SBATCH_TIMELIMIT input variable, whose effect shows in the job's time limit.
func TestLabCommandPrefix(t *testing.T) {
	t.Parallel()
	cfg := labConfig(t)
	cfg.CommandPrefix = "env SBATCH_TIMELIMIT=7"
	b := newLabBackend(t, cfg)
	p := conformance.NewPod("prefix", conformance.ShellContainer("main", "echo via prefix"))
	jobID := createPod(t, b, p, conformance.Objects{})
	raw, err := exec.Command("squeue", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := parseSqueue(raw)
	if err != nil {
		t.Fatal(err)
	}
	if jobs[jobID] == nil {
		t.Fatalf("job %s is not in the queue", jobID)
	}
	var limit struct {
		Jobs []struct {
			ID    int64 `json:"job_id"`
			Limit int64 `json:"time_limit"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(raw, &limit); err != nil {
		t.Fatal(err)
	}
	for _, j := range limit.Jobs {
		if strconv.FormatInt(j.ID, 10) == jobID && j.Limit != 7 {
			t.Errorf("job time limit = %d minutes, want 7 from the prefix's SBATCH_TIMELIMIT", j.Limit)
		}
	}
	st := waitFor(t, b, p, 2*time.Minute, "terminated", terminatedAll)
	if st.Containers[0].State.Terminated.ExitCode != 0 || logsOf(t, b, p, "main", interlink.LogOpts{}) != "via prefix\n" {
		t.Errorf("pod through a prefix: %+v", st.Containers[0].State)
	}
}

// TestLabRefusedSubmissionLeavesNothing: a job SLURM refuses is the create error, with SLURM's message, and
// leaves neither a job nor a directory.
func TestLabRefusedSubmissionLeavesNothing(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	p := conformance.NewPod("refused", conformance.ShellContainer("main", "true"))
	p.Annotations[AnnotationFlags] = "--partition=no-such-partition"
	_, err := b.Create(ctxFor(t, time.Minute), conformance.NewCreateRequest(p, conformance.Objects{}))
	if err == nil || backend.KindOf(err) != backend.KindInvalid || !strings.Contains(strings.ToLower(err.Error()), "invalid partition") {
		t.Fatalf("Create = %v, want an invalid error with SLURM's message", err)
	}
	if _, err := os.Stat(b.podDir(string(p.UID))); !os.IsNotExist(err) {
		t.Errorf("the pod's directory was left behind")
	}
	jobs, _ := b.querySqueue(ctxFor(t, time.Minute))
	for id, j := range jobs {
		if j.Name == string(p.UID) {
			t.Errorf("job %s was left behind", id)
		}
	}
	if st := statusOf(t, b, p); st.Containers[0].State.Terminated == nil || st.Containers[0].State.Terminated.Reason != pod.ReasonNotFound {
		t.Errorf("status of the refused pod = %+v", st.Containers[0].State)
	}
}

// TestLabEnvAndArgsArriveLiterally: values that a shell would expand or split reach the container as written,
// multi-line ones included, and nothing in them runs.
func TestLabEnvAndArgsArriveLiterally(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	evil := `a'b"c $(touch /tmp/slurm-backend-pwned) ` + "`id`" + ` \ ${HOME} ;|&`
	pem := "-----BEGIN CERT-----\nAAAA\n-----END CERT-----"
	c := conformance.ShellContainer("main", `printf '[%s]\n' "$EVIL" "$PEM" "$0" "$1"`)
	c.Command = append(c.Command, evil, "second arg")
	c.Env = []v1.EnvVar{{Name: "EVIL", Value: evil}, {Name: "PEM", Value: pem}}
	p := conformance.NewPod("literal", c)
	createPod(t, b, p, conformance.Objects{})
	waitFor(t, b, p, 2*time.Minute, "terminated", terminatedAll)
	want := "[" + evil + "]\n[" + pem + "]\n[" + evil + "]\n[second arg]\n"
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != want {
		t.Errorf("container printed\n%s\nwant\n%s", got, want)
	}
	if _, err := os.Stat("/tmp/slurm-backend-pwned"); err == nil {
		t.Errorf("a command in a pod value ran")
	}
}

// TestLabOOMKilled: a container over its own memory limit is OOMKilled (exit 137), as in Kubernetes.
func TestLabOOMKilled(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	c := v1.Container{Name: "main", Image: "python:3-slim", ImagePullPolicy: v1.PullIfNotPresent,
		Command:   []string{"python", "-c", "x = bytearray(400 * 1024 * 1024); print(len(x))"},
		Resources: v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")}}}
	p := conformance.NewPod("oom", c)
	createPod(t, b, p, conformance.Objects{})
	st := waitFor(t, b, p, 3*time.Minute, "terminated", terminatedAll)
	if term := st.Containers[0].State.Terminated; term.ExitCode != 137 || term.Reason != pod.ReasonOOMKilled {
		t.Errorf("terminated = %+v, want exit 137 OOMKilled", term)
	}
}

// TestLabRestartOnFailure: restartPolicy OnFailure restarts a failed container inside the job, counts it, and
// keeps the failed run as lastState and as the previous log.
func TestLabRestartOnFailure(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	c := conformance.Mount(conformance.ShellContainer("main",
		"if [ -f /data/once ]; then echo second; exit 0; fi; touch /data/once; echo first; exit 1"), "data", "/data", "", false)
	p := conformance.WithVolumes(conformance.NewPod("restart", c), conformance.EmptyDirVolume("data"))
	p.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	createPod(t, b, p, conformance.Objects{})
	st := waitFor(t, b, p, 2*time.Minute, "terminated after a restart", terminatedAll)
	cs := st.Containers[0]
	if cs.RestartCount != 1 || cs.State.Terminated.ExitCode != 0 || cs.LastTerminationState.Terminated == nil ||
		cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("status = %+v, want restartCount 1, exit 0, lastState exit 1", cs)
	}
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != "second\n" {
		t.Errorf("current log = %q", got)
	}
	if got := logsOf(t, b, p, "main", interlink.LogOpts{Previous: true}); got != "first\n" {
		t.Errorf("previous log = %q", got)
	}
	if pod.Phase(st) != v1.PodSucceeded {
		t.Errorf("phase = %s", pod.Phase(st))
	}
}

// TestLabRestartedBackendFindsPods: a new backend on the same root lists the pods and answers their status.
func TestLabRestartedBackendFindsPods(t *testing.T) {
	t.Parallel()
	cfg := labConfig(t)
	b := newLabBackend(t, cfg)
	p := conformance.NewPod("recover", conformance.ShellContainer("main", "sleep 20"))
	jobID := createPod(t, b, p, conformance.Objects{})
	b2 := newLabBackend(t, cfg)
	recs, err := b2.List(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].UID != string(p.UID) || recs[0].RemoteID != jobID || recs[0].Name != p.Name {
		t.Fatalf("List = %+v", recs)
	}
	again, err := b2.Create(ctxFor(t, time.Minute), conformance.NewCreateRequest(p, conformance.Objects{}))
	if err != nil || again.RemoteID != jobID {
		t.Errorf("Create on the restarted backend = %v, %v; want job %s again", again, err, jobID)
	}
	waitFor(t, b2, p, 2*time.Minute, "running", func(st interlink.PodStatus) bool { return st.Containers[0].State.Running != nil })
}

// TestLabRuntimeNone runs a command directly on the node, with the pod's environment.
func TestLabRuntimeNone(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	c := conformance.ShellContainer("main", `echo "$GREETING from $(hostname)"`)
	c.Command[0] = "/bin/sh"
	c.Env = []v1.EnvVar{{Name: "GREETING", Value: "hello 'node'"}}
	p := conformance.NewPod("none", c)
	p.Annotations[AnnotationRuntime] = RuntimeNone
	createPod(t, b, p, conformance.Objects{})
	waitFor(t, b, p, 2*time.Minute, "terminated", terminatedAll)
	host, _ := os.Hostname()
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != "hello 'node' from "+host+"\n" {
		t.Errorf("logs = %q", got)
	}
}

// TestLabSbatchWarningsAreNotFailures: a site's sbatch wrapper that prints a warning on stderr does not fail
// the submission.
func TestLabSbatchWarningsAreNotFailures(t *testing.T) {
	t.Parallel()
	cfg := labConfig(t)
	cfg.Sbatch = `sh -c 'echo "sbatch: warning: this site wraps sbatch" >&2; exec sbatch "$@"' sbatch`
	b := newLabBackend(t, cfg)
	p := conformance.NewPod("warned", conformance.ShellContainer("main", "echo ok"))
	jobID := createPod(t, b, p, conformance.Objects{})
	if _, err := strconv.Atoi(jobID); err != nil {
		t.Fatalf("job id %q", jobID)
	}
	st := waitFor(t, b, p, 2*time.Minute, "terminated", terminatedAll)
	if st.Containers[0].State.Terminated.ExitCode != 0 {
		t.Errorf("status = %+v", st.Containers[0].State)
	}
}

// TestLabPreExecAndPodIP: the wstunnel commands and the pre-exec text run in the job's shell before the
// containers, in that order, and POD_IP holds the pod IP interLink chose (seen here by a runtime-none
// container, which inherits the job's environment).
func TestLabPreExecAndPodIP(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	c := conformance.ShellContainer("main", `echo "$FROM_PRE_EXEC $POD_IP"; cat "$SLURM_SUBMIT_DIR/order"`)
	c.Command[0] = "/bin/sh"
	p := conformance.NewPod("preexec", c)
	p.Annotations[AnnotationRuntime] = RuntimeNone
	p.Annotations[AnnotationWstunnel] = "echo wstunnel > order"
	p.Annotations[AnnotationPreExec] = "echo pre-exec >> order\nexport FROM_PRE_EXEC='set by pre-exec'"
	p.Annotations[pod.AnnotationPodIP] = "10.42.0.7"
	createPod(t, b, p, conformance.Objects{})
	waitFor(t, b, p, 2*time.Minute, "terminated", terminatedAll)
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != "set by pre-exec 10.42.0.7\nwstunnel\npre-exec\n" {
		t.Errorf("logs = %q", got)
	}
}

// TestLabCapacity: the lab's one node, from sinfo.
func TestLabCapacity(t *testing.T) {
	t.Parallel()
	cfg := labConfig(t)
	cfg.Pods = 50
	b := newLabBackend(t, cfg)
	c, err := b.Capacity(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("sinfo", "-h", "-o", "%c %m").Output()
	var cpus, mem int64
	if _, err := fmt.Sscan(string(out), &cpus, &mem); err != nil {
		t.Fatalf("sinfo said %q", out)
	}
	if c.CPUMilli == nil || *c.CPUMilli != cpus*1000 || c.MemoryBytes == nil || *c.MemoryBytes != mem<<20 || c.Pods == nil || *c.Pods != 50 {
		t.Errorf("capacity = %+v, sinfo says %d CPUs %d MB", c, cpus, mem)
	}
}

// TestCustomCapacity: a configured resource command replaces sinfo.
func TestCustomCapacity(t *testing.T) {
	b := offlineBackend(t, Config{ResourceCommand: `echo '{"cpu": "64", "memory": "256Gi", "pods": "100", "accelerators": [{"resourceType": "nvidia.com/gpu", "available": "4"}]}'`,
		Taints: []v1.Taint{{Key: "example.com/hpc", Value: "true", Effect: v1.TaintEffectNoSchedule}}})
	c, err := b.Capacity(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if *c.CPUMilli != 64000 || *c.MemoryBytes != 256<<30 || *c.Pods != 100 || c.Accelerators["nvidia.com/gpu"] != 4 || len(c.Taints) != 1 {
		t.Errorf("capacity = %+v", c)
	}
	b = offlineBackend(t, Config{ResourceCommand: `echo not json`})
	if _, err := b.Capacity(ctxFor(t, time.Minute)); err == nil {
		t.Errorf("a resource command printing no JSON was accepted")
	}
}

// TestLabErrImagePull: an image that cannot be pulled shows as waiting ErrImagePull with the pull's message
// while the job retries, then ends the container with that reason.
func TestLabErrImagePull(t *testing.T) {
	t.Parallel()
	cfg := labConfig(t)
	cfg.RestartBackoff = Duration(2 * time.Second)
	cfg.PullRetries = 6 // about 12 s of retries: a busy machine may show the first status late
	b := newLabBackend(t, cfg)
	c := conformance.ShellContainer("main", "true")
	c.Image = "no-such-image:1"
	p := conformance.NewPod("pullfail", c)
	createPod(t, b, p, conformance.Objects{})
	st := waitFor(t, b, p, 2*time.Minute, "waiting ErrImagePull", func(st interlink.PodStatus) bool {
		w := st.Containers[0].State.Waiting
		return (w != nil && w.Reason == pod.ReasonErrImagePull) || st.Containers[0].State.Terminated != nil
	})
	if w := st.Containers[0].State.Waiting; w == nil || !strings.Contains(w.Message, "no-such-image") {
		t.Errorf("while retrying: %+v, want waiting ErrImagePull naming the image", st.Containers[0].State)
	}
	st = waitFor(t, b, p, time.Minute, "terminated", terminatedAll)
	if term := st.Containers[0].State.Terminated; term.Reason != pod.ReasonErrImagePull || term.ExitCode == 0 || !strings.Contains(term.Message, "manifest unknown") {
		t.Errorf("after the retries: %+v", term)
	}
}

// TestLabNoNewPrivileges: allowPrivilegeEscalation: false is enforced, with Podman and with runtime none.
func TestLabNoNewPrivileges(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	no := false
	for _, rt := range []string{RuntimePodman, RuntimeNone} {
		c := conformance.ShellContainer("main", "grep NoNewPrivs /proc/self/status")
		c.Command[0] = "/bin/sh"
		c.SecurityContext = &v1.SecurityContext{AllowPrivilegeEscalation: &no}
		p := conformance.NewPod("nnp-"+rt, c)
		p.Annotations[AnnotationRuntime] = rt
		createPod(t, b, p, conformance.Objects{})
		waitFor(t, b, p, 2*time.Minute, "terminated", terminatedAll)
		if got := logsOf(t, b, p, "main", interlink.LogOpts{}); strings.Join(strings.Fields(got), " ") != "NoNewPrivs: 1" {
			t.Errorf("runtime %s: %q, want NoNewPrivs: 1", rt, got)
		}
	}
}

// TestLabCommunity runs the pods of interLink's community test set (shared/conformance/community.go) through
// the backend on the lab's SLURM with Podman in the jobs, with the set's CI timeout multiplier: each
// template's phase as the virtual kubelet computes it and its log regexes on the whole logs.
func TestLabCommunity(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs the 13 community scenarios as SLURM jobs")
	}
	b := newLabBackend(t, labConfig(t))
	conformance.RunCommunity(t, b, conformance.CommunityOptions{
		// The set's CI multiplier: jobs share the lab's two real CPUs with the other tests, and pull images.
		TimeoutMultiplier: 10,
		CallTimeout:       2 * time.Minute,
		GracePeriod:       2 * time.Second,
		Parallel:          true,
	})
}

// TestLabEmptyDirSizeLimitEvicts: an emptyDir on disk that grows over its sizeLimit gets the pod evicted
// within the kubelet's measuring interval: its running containers end Evicted with 137, while a pod within
// its limit is left alone.
func TestLabEmptyDirSizeLimitEvicts(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	limit := resource.MustParse("1Mi")
	vol := conformance.EmptyDirVolume("scratch")
	vol.EmptyDir.SizeLimit = &limit
	over := conformance.Mount(conformance.ShellContainer("main", "dd if=/dev/zero of=/scratch/big bs=1M count=4 && echo written && sleep 120"), "scratch", "/scratch", "", false)
	p := conformance.WithVolumes(conformance.NewPod("evicted", over), vol)
	within := conformance.Mount(conformance.ShellContainer("main", "echo small > /scratch/f && sleep 25 && cat /scratch/f"), "scratch", "/scratch", "", false)
	p2 := conformance.WithVolumes(conformance.NewPod("within", within), *vol.DeepCopy())
	createPod(t, b, p, conformance.Objects{})
	createPod(t, b, p2, conformance.Objects{})
	st := waitFor(t, b, p, 90*time.Second, "evicted", terminatedAll)
	term := st.Containers[0].State.Terminated
	if term.Reason != pod.ReasonEvicted || term.ExitCode != 137 || !strings.Contains(term.Message, `Usage of EmptyDir volume "scratch" exceeds the limit "1Mi"`) {
		t.Errorf("over its limit: %+v, want Evicted 137 with the kubelet's message", term)
	}
	if logs := logsOf(t, b, p, "main", interlink.LogOpts{}); !strings.Contains(logs, "written") {
		t.Errorf("logs of the evicted container = %q", logs)
	}
	st2 := waitFor(t, b, p2, 90*time.Second, "terminated", terminatedAll)
	if term := st2.Containers[0].State.Terminated; term.ExitCode != 0 || term.Reason == pod.ReasonEvicted {
		t.Errorf("within its limit: %+v, want a normal end", term)
	}
}

// TestLabShimStatuses: the shim's readiness and reasons reach the statuses (not ready until the readiness
// probe passes; a missing command ends StartError 127 rather than waiting; a failing liveness probe ends
// Unhealthy 137 even under a memory limit), and the set's CI annotations work with Podman: --job-name
// overrides the job's name (the pod stays tracked by its job id), -t 2800 is taken, and image-root
// docker:// still pulls and runs an image that has no command of its own.
func TestLabShimStatuses(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	exec := func(cmd ...string) v1.ProbeHandler { return v1.ProbeHandler{Exec: &v1.ExecAction{Command: cmd}} }

	// The readiness probe passes once the test opens a gate (a file in a hostPath directory), so that "not
	// ready before" holds however late the first status comes on a busy machine. Each probe leaves a line in
	// the gate directory, so that the test sees the probes fail before it looks.
	gate := t.TempDir()
	ready := conformance.ShellContainer("main", "sleep 300")
	ready.VolumeMounts = []v1.VolumeMount{{Name: "gate", MountPath: "/gate"}}
	ready.ReadinessProbe = &v1.Probe{ProbeHandler: exec("sh", "-c", "echo probed >> /gate/probes; test -f /gate/open"), PeriodSeconds: 1}
	pr := conformance.NewPod("readiness", ready)
	pr.Spec.Volumes = []v1.Volume{{Name: "gate", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: gate}}}}
	missing := conformance.ShellContainer("main", "")
	missing.Command, missing.Args = []string{"nonexistent-command"}, nil
	pm := conformance.NewPod("missing", missing)
	sick := conformance.ShellContainer("main", "echo up; sleep 60")
	sick.Resources = v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")}}
	sick.LivenessProbe = &v1.Probe{ProbeHandler: exec("false"), PeriodSeconds: 1, FailureThreshold: 2}
	ps := conformance.NewPod("unhealthy", sick)
	ci := conformance.ShellContainer("main", "")
	ci.Image, ci.Command, ci.Args = "busybox:1.36", nil, []string{"sh", "-c", "echo default entrypoint via docker://"}
	pc := conformance.NewPod("ci-annotations", ci)
	pc.Annotations[AnnotationFlags] = "--job-name=test-pod-cfg -t 2800"
	pc.Annotations[AnnotationImageRoot] = "docker://"
	for _, p := range []*v1.Pod{pr, pm, ps} {
		createPod(t, b, p, conformance.Objects{})
	}
	jobID := createPod(t, b, pc, conformance.Objects{})

	st := waitFor(t, b, pr, 90*time.Second, "running, not ready", func(st interlink.PodStatus) bool {
		return st.Containers[0].State.Running != nil
	})
	labtest.WaitForLines(t, filepath.Join(gate, "probes"), 2, 90*time.Second) // two failing probes
	if st = statusOf(t, b, pr); st.Containers[0].State.Running == nil || st.Containers[0].Ready {
		t.Errorf("ready before its readiness probe passed: %+v", st.Containers[0])
	}
	if err := os.WriteFile(filepath.Join(gate, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, pr, 60*time.Second, "ready", func(st interlink.PodStatus) bool {
		return st.Containers[0].State.Running != nil && st.Containers[0].Ready
	})

	st = waitFor(t, b, pm, 90*time.Second, "terminated", terminatedAll)
	if term := st.Containers[0].State.Terminated; term.ExitCode != 127 || term.Reason != "StartError" || !strings.Contains(term.Message, "nonexistent-command") {
		t.Errorf("missing command: %+v, want StartError 127", term)
	}
	st = waitFor(t, b, ps, 90*time.Second, "terminated", terminatedAll)
	if term := st.Containers[0].State.Terminated; term.ExitCode != 137 || term.Reason != "Unhealthy" || !strings.Contains(term.Message, "Liveness probe failed") {
		t.Errorf("failing liveness probe: %+v, want Unhealthy 137", term)
	}

	if j := squeueJobOf(t, b, jobID); j != nil && j.Name != "test-pod-cfg" {
		t.Errorf("job %s is named %q, want the annotation's test-pod-cfg", jobID, j.Name)
	}
	st = waitFor(t, b, pc, 90*time.Second, "terminated", terminatedAll)
	if term := st.Containers[0].State.Terminated; term.ExitCode != 0 {
		t.Errorf("docker:// image with args only: %+v (status %s)", term, conformance.FormatStatus(st))
	}
	if logs := logsOf(t, b, pc, "main", interlink.LogOpts{}); logs != "default entrypoint via docker://\n" {
		t.Errorf("logs = %q", logs)
	}
	script, err := os.ReadFile(filepath.Join(b.podDir(string(pc.UID)), scriptFile))
	if err != nil || !strings.Contains(string(script), "#SBATCH --time=2800\n") {
		t.Errorf("the job script lacks the annotation's time limit (%v):\n%s", err, script)
	}
}
