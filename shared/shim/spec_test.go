package shim

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestResolveArgv(t *testing.T) {
	ep, cmd := []string{"/docker-entrypoint.sh"}, []string{"nginx", "-g", "daemon off;"}
	cases := []struct {
		name          string
		command, args []string
		ep, cmd       []string
		want          []string
	}{
		{"image defaults", nil, nil, ep, cmd, []string{"/docker-entrypoint.sh", "nginx", "-g", "daemon off;"}},
		{"command replaces entrypoint and drops cmd", []string{"nginx"}, nil, ep, cmd, []string{"nginx"}},
		{"command and args", []string{"nginx"}, []string{"-v"}, ep, cmd, []string{"nginx", "-v"}},
		{"args alone keep entrypoint", nil, []string{"-v"}, ep, cmd, []string{"/docker-entrypoint.sh", "-v"}},
		{"args alone without entrypoint", nil, []string{"sh", "-c", "echo hi"}, nil, []string{"sh"}, []string{"sh", "-c", "echo hi"}},
		{"cmd only image", nil, nil, nil, []string{"sh"}, []string{"sh"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ResolveArgv(&v1.Container{Name: "c", Command: c.command, Args: c.args}, c.ep, c.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	if _, err := ResolveArgv(&v1.Container{Name: "c", Image: "scratchy"}, nil, nil); err == nil || !strings.Contains(err.Error(), `"scratchy"`) {
		t.Errorf("empty result: got %v, want an error naming the image", err)
	}
	// The caller's slices must not be aliased: a backend reuses the image config.
	entry := make([]string, 1, 4)
	entry[0] = "/ep"
	got, _ := ResolveArgv(&v1.Container{Args: []string{"a"}}, entry, nil)
	got[0] = "changed"
	if entry[0] != "/ep" {
		t.Error("ResolveArgv changed the image's entrypoint slice")
	}
}

func TestValidate(t *testing.T) {
	named := intstr.FromString("http")
	ok := Spec{Argv: []string{"sh"}, Ports: []v1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Port: named}}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	sig := v1.Signal("SIGWHAT")
	bad := Spec{
		LivenessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Port: named}}},
		Lifecycle: &v1.Lifecycle{
			PreStop:    &v1.LifecycleHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(80)}},
			PostStart:  &v1.LifecycleHandler{},
			StopSignal: &sig,
		},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid spec accepted")
	}
	for _, want := range []string{"argv is empty", `livenessProbe: port "http"`, "lifecycle.preStop: tcpSocket", "lifecycle.postStart: no action", "lifecycle.stopSignal"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestWriteSpecAndReadState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shim", "c")
	if _, err := ReadState(dir); err == nil {
		t.Error("ReadState of a missing directory: want an error")
	}
	grace := int64(5)
	spec := Spec{Argv: []string{"sh", "-c", "echo 'a b'"}, TerminationGracePeriodSeconds: &grace, PreStopOnExit: true}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, ExitFile), []byte("1 2020-01-01T00:00:00Z\n"), 0o644)
	if err := WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSpec(filepath.Join(dir, SpecFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, spec) {
		t.Errorf("spec round trip: got %+v, want %+v", got, spec)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o777 {
		t.Errorf("state directory mode %v, want 0777", fi.Mode().Perm())
	}
	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Exited || st.Ready != nil || !st.StartedAt.IsZero() {
		t.Errorf("fresh state: got %+v, want nothing (the old exit file must be gone)", st)
	}

	w := &stateWriter{dir: dir}
	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	w.started(start)
	w.ready(true)
	w.reason(ReasonUnhealthy, "Liveness probe failed: HTTP probe failed with statuscode: 500")
	w.exit(137)
	st, err = ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.StartedAt.Equal(start) || st.Ready == nil || !*st.Ready || !st.Exited || st.ExitCode != 137 ||
		time.Since(st.FinishedAt) > time.Minute || st.Reason != ReasonUnhealthy || !strings.HasPrefix(st.Message, "Liveness probe failed") {
		t.Errorf("state: got %+v", st)
	}
	os.WriteFile(filepath.Join(dir, ExitFile), []byte("x"), 0o644)
	if _, err := ReadState(dir); err == nil {
		t.Error("malformed exit file: want an error")
	}
}

// TestOnRunning: the shim's verdicts reach a running container's status.
func TestOnRunning(t *testing.T) {
	probe := &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}
	c := &v1.Container{Name: "c", StartupProbe: probe, ReadinessProbe: probe}
	no, yes := false, true
	for _, tc := range []struct {
		st             State
		ready, started bool
	}{
		{State{}, true, false}, // no ready file: readiness left as it was; the startup probe has not succeeded
		{State{Ready: &no}, false, false},
		{State{Ready: &no, StartupSucceeded: true}, false, true},
		{State{Ready: &yes, StartupSucceeded: true}, true, true},
	} {
		cs := v1.ContainerStatus{Ready: true, Started: &yes}
		tc.st.OnRunning(c, &cs)
		if cs.Ready != tc.ready || *cs.Started != tc.started {
			t.Errorf("%+v: ready %v started %v, want %v and %v", tc.st, cs.Ready, *cs.Started, tc.ready, tc.started)
		}
	}
	cs := v1.ContainerStatus{Ready: true, Started: &yes}
	(State{}).OnRunning(&v1.Container{Name: "plain"}, &cs)
	if !cs.Ready || !*cs.Started {
		t.Errorf("a container without probes: ready %v started %v", cs.Ready, *cs.Started)
	}
}

// TestNotReadyUntilTheProbesSay: a readiness or a startup probe makes a container not ready from the spec's
// writing and from each run's reset (which replaces the ready file rather than removing it); without
// either there is no ready file, which reads as ready.
func TestNotReadyUntilTheProbesSay(t *testing.T) {
	probe := &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}
	for _, tc := range []struct {
		name string
		spec Spec
		want *bool
	}{
		{"no probe", Spec{Argv: []string{"true"}}, nil},
		{"liveness only", Spec{Argv: []string{"true"}, LivenessProbe: probe}, nil},
		{"readiness", Spec{Argv: []string{"true"}, ReadinessProbe: probe}, new(false)},
		{"startup only", Spec{Argv: []string{"true"}, StartupProbe: probe}, new(false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			check := func(when string) {
				t.Helper()
				st, err := ReadState(dir)
				if err != nil {
					t.Fatal(err)
				}
				if (st.Ready == nil) != (tc.want == nil) || st.Ready != nil && *st.Ready != *tc.want {
					t.Errorf("%s: ready %v, want %v", when, st.Ready, tc.want)
				}
				if st.Exited {
					t.Errorf("%s: the previous run's exit is still there", when)
				}
			}
			if err := WriteSpec(dir, tc.spec); err != nil {
				t.Fatal(err)
			}
			check("after WriteSpec")
			w := &stateWriter{dir: dir}
			w.ready(true) // a previous run, ready when it ended
			w.exit(0)
			w.reset(tc.spec.GatesReadiness())
			check("after reset")
		})
	}
}

func TestLookCommand(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "script"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644)
	t.Setenv("PATH", dir+":/bin:/usr/bin")
	if p, err := lookCommand("script", ""); err != nil || p != filepath.Join(dir, "script") {
		t.Errorf("script: got %q, %v", p, err)
	}
	for name, want := range map[string]int{"nonexistent-command": 127, "data": 126, dir: 126, "/no/such/file": 127, filepath.Join(dir, "data"): 126} {
		if _, err := lookCommand(name, ""); errorCode(err) != want || err == nil {
			t.Errorf("%s: got %v (code %d), want code %d", name, err, errorCode(err), want)
		}
	}
	if p, err := lookCommand("./script", dir); err != nil || p != "./script" {
		t.Errorf("./script relative to the working dir: got %q, %v", p, err)
	}
}
