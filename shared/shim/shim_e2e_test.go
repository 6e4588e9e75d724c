package shim_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim/shimtest"
)

// syncBuffer collects the shim's output (the container log) while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is one shim process run on the host as a backend would run it in a container.
type running struct {
	t    *testing.T
	cmd  *exec.Cmd
	dir  string
	log  *syncBuffer
	done chan struct{}
	code int
	err  error
	// marker is an environment entry that everything the run starts inherits.
	marker string
}

var runs atomic.Int64

// lingering lists the processes of the run still alive (not zombies) a moment after the shim ended: as in a
// container, nothing may outlive it.
func (r *running) lingering() []string {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(50 * time.Millisecond) {
		var alive []string
		var pids []int
		environs, _ := filepath.Glob("/proc/[0-9]*/environ")
		for _, f := range environs {
			data, err := os.ReadFile(f)
			if err == nil && bytes.Contains(data, []byte(r.marker+"\x00")) {
				cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "cmdline"))
				alive = append(alive, filepath.Base(filepath.Dir(f))+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
				pids = append(pids, mustAtoi(filepath.Base(filepath.Dir(f))))
			}
		}
		if len(alive) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return alive
		}
	}
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func start(t *testing.T, spec shim.Spec) *running {
	t.Helper()
	bin := shimtest.Build(t)
	dir := filepath.Join(t.TempDir(), "shim", "c")
	if err := shim.WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	r := &running{t: t, dir: dir, log: &syncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(bin, filepath.Join(dir, shim.SpecFile))
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	// Whatever the shim leaves behind must not hold the test up; lingering() tells about it.
	r.cmd.WaitDelay = 2 * time.Second
	r.marker = fmt.Sprintf("SHIM_TEST_RUN=%d-%d", os.Getpid(), runs.Add(1))
	r.cmd.Env = append(os.Environ(), r.marker)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		r.err = r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

// wait waits for the shim to end and returns its exit code.
func (r *running) wait(timeout time.Duration) int {
	r.t.Helper()
	select {
	case <-r.done:
		if left := r.lingering(); len(left) > 0 {
			r.t.Errorf("processes outlived the shim: %q", left)
		}
		return r.code
	case <-time.After(timeout):
		r.t.Fatalf("the shim did not end within %v; log:\n%s", timeout, r.log)
		return 0
	}
}

// waitLog waits until the log holds s.
func (r *running) waitLog(s string, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(r.log.String(), s) {
		if time.Now().After(deadline) {
			r.t.Fatalf("the log did not show %q within %v; log:\n%s", s, timeout, r.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *running) state() shim.State {
	r.t.Helper()
	st, err := shim.ReadState(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// waitReady waits until the ready file says want.
func (r *running) waitReady(want bool, timeout time.Duration) time.Duration {
	r.t.Helper()
	begin := time.Now()
	for {
		if st := r.state(); st.Ready != nil && *st.Ready == want {
			return time.Since(begin)
		}
		if time.Since(begin) > timeout {
			r.t.Fatalf("ready did not become %v within %v; state %+v; log:\n%s", want, timeout, r.state(), r.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCount waits until count() reaches n, what counts a probe's runs (the answers of a server it probes).
func (r *running) waitCount(what string, count func() int32, n int32, timeout time.Duration) {
	r.t.Helper()
	for deadline := time.Now().Add(timeout); count() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("%d %s within %v, want %d; state %+v; log:\n%s", count(), what, timeout, n, r.state(), r.log)
		}
	}
}

// checkExit checks the exit state file against the process's own exit code.
func (r *running) checkExit(code int) {
	r.t.Helper()
	st := r.state()
	if !st.Exited || st.ExitCode != code || r.code != code {
		r.t.Errorf("exit: process %d, state %+v; want %d; log:\n%s", r.code, st, code, r.log)
	}
}

func sh(script string) []string { return []string{"sh", "-c", script} }

func execHook(script string) *v1.LifecycleHandler {
	return &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: sh(script)}}
}

func TestExitCodeAndStartedState(t *testing.T) {
	t.Parallel()
	before := time.Now()
	r := start(t, shim.Spec{Argv: sh("echo out; echo err >&2; exit 3")})
	if code := r.wait(10 * time.Second); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	r.checkExit(3)
	st := r.state()
	if st.StartedAt.Before(before.Add(-time.Second)) || st.StartedAt.After(st.FinishedAt) {
		t.Errorf("started %v, finished %v, test began %v", st.StartedAt, st.FinishedAt, before)
	}
	if st.Ready != nil || st.Reason != "" {
		t.Errorf("no readiness probe and a plain exit: got ready %v, reason %q", st.Ready, st.Reason)
	}
	if log := r.log.String(); log != "out\nerr\n" {
		t.Errorf("log %q, want the command's output only", log)
	}
}

func TestSignalledExitCode(t *testing.T) {
	t.Parallel()
	r := start(t, shim.Spec{Argv: sh("kill -KILL $$")})
	if code := r.wait(10 * time.Second); code != 137 {
		t.Errorf("exit code %d, want 128+9", code)
	}
	r.checkExit(137)
}

func TestCommandCannotStart(t *testing.T) {
	t.Parallel()
	r := start(t, shim.Spec{Argv: []string{"nonexistent-command"}})
	if code := r.wait(10 * time.Second); code != 127 {
		t.Errorf("exit code %d, want 127", code)
	}
	r.checkExit(127)
	if st := r.state(); st.Reason != shim.ReasonStartError || !strings.Contains(st.Message, "executable file not found") {
		t.Errorf("state %+v, want reason StartError", st)
	}
	if !strings.Contains(r.log.String(), `"nonexistent-command": executable file not found in $PATH`) {
		t.Errorf("log %q does not say the command is missing", r.log)
	}

	r = start(t, shim.Spec{Argv: []string{"/etc/hostname"}})
	if code := r.wait(10 * time.Second); code != 126 {
		t.Errorf("not executable: exit code %d, want 126; log %s", code, r.log)
	}
}

func TestSignalsAndPreStopOnTerm(t *testing.T) {
	t.Parallel()
	r := start(t, shim.Spec{
		Argv:          sh(`trap 'echo got USR1' USR1; trap 'echo got HUP' HUP; trap 'echo got TERM; exit 7' TERM; echo up; while :; do sleep 0.05; done`),
		Lifecycle:     &v1.Lifecycle{PreStop: execHook("echo preStop begins; sleep 0.5; echo preStop done")},
		PreStopOnExit: true,
	})
	r.waitLog("up\n", 10*time.Second)
	r.cmd.Process.Signal(syscall.SIGUSR1)
	r.waitLog("got USR1", 5*time.Second)
	r.cmd.Process.Signal(syscall.SIGHUP)
	r.waitLog("got HUP", 5*time.Second)
	r.cmd.Process.Signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 7 {
		t.Errorf("exit code %d, want the command's 7", code)
	}
	r.checkExit(7)
	log := r.log.String()
	if !strings.Contains(log, "preStop begins\npreStop done\ngot TERM\n") {
		t.Errorf("preStop must finish before the command gets SIGTERM, and run once; log:\n%s", log)
	}
}

func TestTermEscalatesToKill(t *testing.T) {
	t.Parallel()
	grace := int64(2)
	r := start(t, shim.Spec{Argv: sh(`trap '' TERM; echo up; while :; do sleep 0.05; done`), TerminationGracePeriodSeconds: &grace})
	r.waitLog("up\n", 10*time.Second)
	begin := time.Now()
	r.cmd.Process.Signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 137 {
		t.Errorf("exit code %d, want 137 (SIGKILL after the grace period)", code)
	}
	if took := time.Since(begin); took < 1900*time.Millisecond || took > 15*time.Second {
		t.Errorf("SIGKILL came %v after SIGTERM, want the 2 s grace period", took)
	}
}

// A stop whose grace period the backend wrote (a delete's own, shorter than the pod's) ends with SIGKILL
// when that period is over, not the pod's terminationGracePeriodSeconds.
func TestStopGraceFromTheBackendOverridesThePods(t *testing.T) {
	t.Parallel()
	grace := int64(60)
	r := start(t, shim.Spec{Argv: sh(`trap '' TERM; echo up; while :; do sleep 0.05; done`), TerminationGracePeriodSeconds: &grace})
	r.waitLog("up\n", 10*time.Second)
	if err := shim.WriteStopGrace(filepath.Dir(r.dir), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(r.dir, shim.StopGraceFile)); err != nil || string(data) != "3\n" {
		t.Fatalf("stop-grace file: %q %v", data, err)
	}
	begin := time.Now()
	r.cmd.Process.Signal(syscall.SIGTERM)
	if code := r.wait(20 * time.Second); code != 137 {
		t.Errorf("exit code %d, want 137 (SIGKILL after the stop's grace period)", code)
	}
	if took := time.Since(begin); took < 2900*time.Millisecond || took > 8*time.Second {
		t.Errorf("SIGKILL came %v after SIGTERM, want the 3 s the backend gave, not the pod's 60 s", took)
	}
	// A missing root (no container ever started) is no error.
	if err := shim.WriteStopGrace(filepath.Join(r.dir, "no-such-dir"), time.Second); err != nil {
		t.Errorf("WriteStopGrace on a missing directory: %v", err)
	}
}

func TestPreStopOnNaturalExit(t *testing.T) {
	t.Parallel()
	r := start(t, shim.Spec{
		Argv:          sh("echo main done; exit 4"),
		Lifecycle:     &v1.Lifecycle{PreStop: execHook("echo preStop hook executed!; echo preStop to stderr >&2")},
		PreStopOnExit: true,
	})
	if code := r.wait(10 * time.Second); code != 4 {
		t.Errorf("exit code %d, want the command's 4", code)
	}
	r.checkExit(4)
	if log := r.log.String(); !strings.HasPrefix(log, "main done\npreStop hook executed!\n") || !strings.Contains(log, "preStop to stderr\n") {
		t.Errorf("log %q, want the command's line then preStop's", log)
	}

	r = start(t, shim.Spec{Argv: sh("echo main done"), Lifecycle: &v1.Lifecycle{PreStop: execHook("echo preStop ran")}})
	r.wait(10 * time.Second)
	if strings.Contains(r.log.String(), "preStop ran") {
		t.Error("without PreStopOnExit a natural exit must not run preStop")
	}
}

func TestPostStartRunsBesideTheCommand(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "poststart-marker")
	r := start(t, shim.Spec{
		Argv: sh(fmt.Sprintf(`echo Container starting...; i=0; while [ ! -f %[1]s ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; echo "marker: $(cat %[1]s)"`, marker)),
		// The marker is written beside and renamed: the command, looking as it appears, must not read it empty.
		Lifecycle: &v1.Lifecycle{PostStart: execHook(fmt.Sprintf(`echo postStart hook executed! | tee %[1]s.new && mv %[1]s.new %[1]s`, marker))},
	})
	if code := r.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0; log:\n%s", code, r.log)
	}
	log := r.log.String()
	if !strings.Contains(log, "marker: postStart hook executed!") || strings.Count(log, "postStart hook executed!") != 2 {
		t.Errorf("postStart must run beside the command with its output in the log; log:\n%s", log)
	}
}

func TestPostStartFailureKills(t *testing.T) {
	t.Parallel()
	r := start(t, shim.Spec{
		Argv:      sh("echo up; sleep 30"),
		Lifecycle: &v1.Lifecycle{PostStart: execHook("exit 2"), PreStop: execHook("echo preStop ran")},
	})
	if code := r.wait(10 * time.Second); code != shim.ExitKilled {
		t.Errorf("exit code %d, want 137", code)
	}
	r.checkExit(shim.ExitKilled)
	st := r.state()
	if st.Reason != shim.ReasonFailedPostStartHook || !strings.Contains(st.Message, "exited with code 2") {
		t.Errorf("state %+v, want FailedPostStartHook", st)
	}
	if log := r.log.String(); !strings.Contains(log, "interlink-shim: PostStart hook failed") || !strings.Contains(log, "preStop ran") {
		t.Errorf("log %q, want the failure line and preStop (as the kubelet's kill)", log)
	}
}

// server is an HTTP server on loopback whose answers the test switches.
type server struct {
	status   atomic.Int32
	hits     atomic.Int32
	failures atomic.Int32 // answers of 400 or more
	header   atomic.Value
	port     int
}

func newServer(t *testing.T, status int) *server {
	s := &server{}
	s.status.Store(int32(status))
	s.header.Store("")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.header.Store(r.Header.Get("X-Probe") + "|" + r.URL.Path + "|" + r.UserAgent())
		code := int(s.status.Load())
		if code >= 400 {
			s.failures.Add(1)
		}
		w.WriteHeader(code)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func TestReadinessHTTPGetWithNamedPort(t *testing.T) {
	t.Parallel()
	s := newServer(t, http.StatusServiceUnavailable)
	r := start(t, shim.Spec{
		Argv:  sh("sleep 60"),
		Ports: []v1.ContainerPort{{Name: "web", ContainerPort: int32(s.port)}},
		ReadinessProbe: &v1.Probe{
			ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("web"),
				HTTPHeaders: []v1.HTTPHeader{{Name: "X-Probe", Value: "yes"}}}},
			PeriodSeconds: 1, FailureThreshold: 2,
		},
	})
	r.waitReady(false, 5*time.Second)
	r.waitCount("503 answers", s.failures.Load, 2, 15*time.Second)
	if st := r.state(); *st.Ready || s.hits.Load() == 0 {
		t.Fatalf("503 answers: ready %v after %d probes, want false", *st.Ready, s.hits.Load())
	}
	if h := s.header.Load().(string); !strings.HasPrefix(h, "yes|/ready|kube-probe/") {
		t.Errorf("request seen as %q, want the header, the path and the kubelet's user agent", h)
	}
	s.status.Store(http.StatusOK)
	r.waitReady(true, 15*time.Second)
	failed := s.failures.Load()
	s.status.Store(http.StatusInternalServerError)
	// failureThreshold 2: not ready again after the second failure, not at the first. Counted rather than
	// timed: a probe delayed by a busy machine can come less than a period before the next one.
	r.waitReady(false, 15*time.Second)
	if n := s.failures.Load() - failed; n < 2 {
		t.Errorf("ready turned false after %d failed probe(s), want the second", n)
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code %d, want 143", code)
	}
	if st := r.state(); *st.Ready {
		t.Error("an ended container must not stay ready")
	}
}

func TestLivenessFailureKills(t *testing.T) {
	t.Parallel()
	s := newServer(t, http.StatusInternalServerError)
	begin := time.Now()
	r := start(t, shim.Spec{
		Argv:      sh("echo up; trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.05; done"),
		Lifecycle: &v1.Lifecycle{PreStop: execHook("echo preStop ran")},
		LivenessProbe: &v1.Probe{
			ProbeHandler:        v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt(s.port)}},
			InitialDelaySeconds: 1, PeriodSeconds: 1, FailureThreshold: 2,
		},
	})
	if code := r.wait(15 * time.Second); code != shim.ExitKilled {
		t.Errorf("exit code %d, want 137 whatever the command's own end", code)
	}
	// Probes at 1 s and 2 s: the kill follows the second failure.
	if took := time.Since(begin); took < 1900*time.Millisecond || took > 15*time.Second {
		t.Errorf("killed after %v, want about 2 s", took)
	}
	r.checkExit(shim.ExitKilled)
	st := r.state()
	if st.Reason != shim.ReasonUnhealthy || st.Message != "Liveness probe failed: HTTP probe failed with statuscode: 500" {
		t.Errorf("reason %q message %q", st.Reason, st.Message)
	}
	if log := r.log.String(); !strings.Contains(log, "preStop ran\n") || !strings.Contains(log, "got TERM") {
		t.Errorf("log %q, want preStop then SIGTERM", log)
	}
	if n := s.hits.Load(); n != 2 {
		t.Errorf("%d probes, want 2", n)
	}
}

func TestStartupProbeGatesOthers(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	started, livenessRan := filepath.Join(tmp, "started"), filepath.Join(tmp, "liveness-ran")
	startupRan := filepath.Join(tmp, "startup-ran") // a line per startup probe
	r := start(t, shim.Spec{
		Argv: sh("sleep 60"),
		StartupProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: sh("echo >> " + startupRan + "; test -f " + started)}},
			PeriodSeconds: 1, FailureThreshold: 30},
		LivenessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: sh("echo >> " + livenessRan)}},
			PeriodSeconds: 1},
		ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt(newServer(t, 200).port)}},
			PeriodSeconds: 1},
	})
	labtest.WaitForLines(t, startupRan, 2, 15*time.Second) // two failing startup probes
	if _, err := os.Stat(livenessRan); err == nil {
		t.Error("liveness ran before the startup probe succeeded")
	}
	if st := r.state(); st.Ready == nil || *st.Ready {
		t.Errorf("ready %v before startup, want false", st.Ready)
	}
	os.WriteFile(started, nil, 0o644)
	r.waitReady(true, 15*time.Second)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if data, err := os.ReadFile(livenessRan); err == nil && len(data) > 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("liveness did not run within 10 s of the startup probe's success: %v", err)
		}
	}
	if st := r.state(); st.Exited {
		t.Errorf("a healthy container was stopped: %+v", st)
	}
}

// TestStartupProbeAloneGatesReadiness: a container that has a startup probe and no readiness probe is
// neither started nor ready until the startup probe succeeds, then both; not ready once it has ended.
func TestStartupProbeAloneGatesReadiness(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	started, startupRan := filepath.Join(tmp, "started"), filepath.Join(tmp, "startup-ran")
	r := start(t, shim.Spec{
		Argv: sh("sleep 60"),
		StartupProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: sh("echo >> " + startupRan + "; test -f " + started)}},
			PeriodSeconds: 1, FailureThreshold: 30},
	})
	r.waitReady(false, 5*time.Second)
	labtest.WaitForLines(t, startupRan, 2, 15*time.Second) // two failing startup probes
	if st := r.state(); st.Ready == nil || *st.Ready || st.StartupSucceeded {
		t.Errorf("before the startup probe succeeded: ready %v, started %v; want neither", st.Ready, st.StartupSucceeded)
	}
	os.WriteFile(started, nil, 0o644)
	r.waitReady(true, 15*time.Second)
	if st := r.state(); !st.StartupSucceeded {
		t.Error("ready, but the startup probe's success is not recorded")
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.wait(10 * time.Second)
	if st := r.state(); st.Ready == nil || *st.Ready {
		t.Errorf("ready %v after the end, want false", st.Ready)
	}
}

func TestStartupFailureAndExecTimeout(t *testing.T) {
	t.Parallel()
	r := start(t, shim.Spec{
		Argv: sh("sleep 60"),
		StartupProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: sh("sleep 5")}},
			TimeoutSeconds: 1, PeriodSeconds: 1, FailureThreshold: 1},
	})
	if code := r.wait(10 * time.Second); code != shim.ExitKilled {
		t.Errorf("exit code %d, want 137", code)
	}
	if st := r.state(); st.Reason != shim.ReasonUnhealthy || !strings.HasPrefix(st.Message, "Startup probe failed: ") || !strings.Contains(st.Message, "timed out") {
		t.Errorf("state %+v, want a startup probe timeout", st)
	}
}

func TestExecProbeOutputIsTheMessage(t *testing.T) {
	t.Parallel()
	r := start(t, shim.Spec{
		Argv: sh("sleep 60"),
		LivenessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: sh("echo database is down; exit 1")}},
			PeriodSeconds: 1, FailureThreshold: 1},
	})
	r.wait(10 * time.Second)
	if st := r.state(); st.Message != "Liveness probe failed: database is down" {
		t.Errorf("message %q", st.Message)
	}
}

func TestGRPCReadiness(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var checks atomic.Int32 // health checks answered
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		defer checks.Add(1)
		return h(ctx, req)
	}))
	hs := health.NewServer()
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	service := "app"
	r := start(t, shim.Spec{
		Argv: sh("sleep 60"),
		ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{GRPC: &v1.GRPCAction{Port: int32(ln.Addr().(*net.TCPAddr).Port), Service: &service}},
			PeriodSeconds: 1},
	})
	r.waitCount("NOT_SERVING answers", checks.Load, 2, 15*time.Second)
	if st := r.state(); st.Ready == nil || *st.Ready {
		t.Fatalf("NOT_SERVING: ready %v, want false", st.Ready)
	}
	hs.SetServingStatus("app", healthpb.HealthCheckResponse_SERVING)
	r.waitReady(true, 15*time.Second)
}

func TestOrphansAreReaped(t *testing.T) {
	t.Parallel()
	r := start(t, shim.Spec{Argv: sh("(sleep 0.2 &); (sleep 0.3 &); echo up; sleep 60")})
	r.waitLog("up\n", 10*time.Second)
	// The orphans end within 0.3 s; on a loaded machine their end and reaping can take longer, so the shim
	// is watched until only the command is left, for a while.
	pid := r.cmd.Process.Pid
	children := func() (all, zombies []string) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range tasks {
			data, _ := os.ReadFile(f)
			for _, c := range strings.Fields(string(data)) {
				all = append(all, c)
				stat, _ := os.ReadFile("/proc/" + c + "/stat")
				if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
					zombies = append(zombies, c)
				}
			}
		}
		return all, zombies
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		all, zombies := children()
		if len(all) == 1 && len(zombies) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("shim %d has children %v (zombies %v) 10 s after its orphans ended, want only the command", pid, all, zombies)
		}
	}
}

func TestHTTPGetHooks(t *testing.T) {
	t.Parallel()
	var paths syncBuffer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(&paths, "%s;", r.URL.Path)
		if r.URL.Path == "/broken" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := intstr.FromInt(ln.Addr().(*net.TCPAddr).Port)
	hook := func(path string) *v1.LifecycleHandler {
		return &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: path, Port: port}}
	}
	r := start(t, shim.Spec{
		Argv:          sh("sleep 0.5; echo done"),
		Lifecycle:     &v1.Lifecycle{PostStart: hook("/poststart"), PreStop: hook("/prestop")},
		PreStopOnExit: true,
	})
	if code := r.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0; log:\n%s", code, r.log)
	}
	if got := paths.String(); got != "/poststart;/prestop;" {
		t.Errorf("hooks called %q, want postStart then preStop", got)
	}

	r = start(t, shim.Spec{Argv: sh("sleep 30"), Lifecycle: &v1.Lifecycle{PostStart: hook("/broken")}})
	if code := r.wait(10 * time.Second); code != shim.ExitKilled {
		t.Errorf("failing httpGet postStart: exit code %d, want 137", code)
	}
	if st := r.state(); st.Reason != shim.ReasonFailedPostStartHook || !strings.Contains(st.Message, "statuscode: 500") {
		t.Errorf("state %+v", st)
	}
}

func TestNothingOutlivesTheShim(t *testing.T) {
	t.Parallel()
	// A background process of the command and one of a hook: in a container they would die with PID 1.
	r := start(t, shim.Spec{
		Argv:          sh("sleep 30 & echo started"),
		Lifecycle:     &v1.Lifecycle{PreStop: execHook("sleep 31 &")},
		PreStopOnExit: true,
	})
	if code := r.wait(10 * time.Second); code != 0 { // wait() fails the test on any process left
		t.Errorf("exit code %d, want 0", code)
	}
}

func TestHTTPSProbeSkipsVerification(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	r := start(t, shim.Spec{
		Argv: sh("sleep 60"),
		ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Scheme: v1.URISchemeHTTPS, Port: intstr.FromInt(port)}},
			PeriodSeconds: 1},
	})
	r.waitReady(true, 15*time.Second)
	if hits.Load() == 0 {
		t.Error("the HTTPS server saw no probe")
	}
}
