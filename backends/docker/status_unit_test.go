package docker

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func stamp(t time.Time) string { return t.Format(time.RFC3339Nano) }

// What an inspect says of a run: exit code, OOM kill, start error, and a start never after the end.
func TestRunInfoFromInspect(t *testing.T) {
	inspect := func(st container.State, memory int64) container.InspectResponse {
		return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{
			State: &st, Created: stamp(t0), HostConfig: &container.HostConfig{Resources: container.Resources{Memory: memory}}}}
	}
	cases := []struct {
		name      string
		in        container.InspectResponse
		want      runInfo
		wantPhase runPhase
		wantOOM   bool // the engine's OOM events must be read
	}{
		{"running", inspect(container.State{Status: "running", StartedAt: stamp(t0)}, 0),
			runInfo{Status: "running", StartedAt: t0, Created: t0}, runRunning, false},
		{"exited 3", inspect(container.State{Status: "exited", ExitCode: 3, StartedAt: stamp(t0), FinishedAt: stamp(t0.Add(time.Second))}, 0),
			runInfo{Status: "exited", ExitCode: 3, StartedAt: t0, FinishedAt: t0.Add(time.Second), Created: t0}, runExited, false},
		{"OOM-killed, said by the inspect", inspect(container.State{Status: "exited", ExitCode: 137, OOMKilled: true, StartedAt: stamp(t0), FinishedAt: stamp(t0)}, 1<<20),
			runInfo{Status: "exited", ExitCode: 137, OOMKilled: true, StartedAt: t0, FinishedAt: t0, Created: t0}, runExited, false},
		{"killed under a memory limit, the inspect silent: ask the events", inspect(container.State{Status: "exited", ExitCode: 137, StartedAt: stamp(t0), FinishedAt: stamp(t0)}, 1<<20),
			runInfo{Status: "exited", ExitCode: 137, StartedAt: t0, FinishedAt: t0, Created: t0}, runExited, true},
		{"killed without a memory limit is no OOM", inspect(container.State{Status: "exited", ExitCode: 137, StartedAt: stamp(t0), FinishedAt: stamp(t0)}, 0),
			runInfo{Status: "exited", ExitCode: 137, StartedAt: t0, FinishedAt: t0, Created: t0}, runExited, false},
		{"the engine could not start it", inspect(container.State{Status: "created", ExitCode: 127, Error: "exec: not found", StartedAt: "0001-01-01T00:00:00Z"}, 0),
			runInfo{Status: "created", ExitCode: 127, Error: "exec: not found", Created: t0}, runExited, false},
		{"created, not started", inspect(container.State{Status: "created"}, 0),
			runInfo{Status: "created", Created: t0}, runPending, false},
		{"stamped started after it ended", inspect(container.State{Status: "exited", StartedAt: stamp(t0.Add(time.Second)), FinishedAt: stamp(t0)}, 0),
			runInfo{Status: "exited", StartedAt: t0, FinishedAt: t0, Created: t0}, runExited, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, oom, err := runInfoOf(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || oom != tc.wantOOM || got.phase() != tc.wantPhase {
				t.Errorf("runInfoOf = %+v (ask events %v, phase %v), want %+v (%v, %v)", got, oom, got.phase(), tc.want, tc.wantOOM, tc.wantPhase)
			}
		})
	}
	if _, _, err := runInfoOf(container.InspectResponse{}); err == nil {
		t.Error("an inspect without a state was taken for a run")
	}
}

// A container's status from its listed runs and what their inspects said (the inspect cache stands for the
// engine's answers: the backend here has no engine at all, so any call to one would panic).
func TestContainerStatusFromEngineAnswers(t *testing.T) {
	c := &v1.Container{Name: "main", Image: "busybox"}
	run := func(id, attempt string, state container.ContainerState) container.Summary {
		s := summary("u", id, "main", attempt, state)
		s.ImageID = "sha256:img"
		return s
	}
	exited := func(code int, oom bool) runInfo {
		return runInfo{Status: "exited", ExitCode: code, OOMKilled: oom, StartedAt: t0, FinishedAt: t0.Add(time.Second)}
	}
	cases := []struct {
		name       string
		runs       []container.Summary
		infos      map[string]runInfo
		failure    containerError
		policy     v1.RestartPolicy
		check      func(t *testing.T, s v1.ContainerStatus)
		wantReason string // of the waiting or terminated state
		wantExit   int32
		restarts   int32
		lastExit   *int32
		noRun      bool // the state is of an attempt that has no container
	}{
		{name: "no run yet", policy: v1.RestartPolicyNever, wantReason: pod.ReasonContainerCreating},
		{name: "running", runs: []container.Summary{run("c0", "0", "running")},
			infos:  map[string]runInfo{"c0": {Status: "running", StartedAt: t0}},
			policy: v1.RestartPolicyAlways, wantReason: ""},
		{name: "completed", runs: []container.Summary{run("c0", "0", "exited")},
			infos: map[string]runInfo{"c0": exited(0, false)}, policy: v1.RestartPolicyNever, wantReason: pod.ReasonCompleted},
		{name: "failed for good", runs: []container.Summary{run("c0", "0", "exited")},
			infos: map[string]runInfo{"c0": exited(2, false)}, policy: v1.RestartPolicyNever, wantReason: pod.ReasonError, wantExit: 2},
		{name: "OOM-killed", runs: []container.Summary{run("c0", "0", "exited")},
			infos: map[string]runInfo{"c0": exited(137, true)}, policy: v1.RestartPolicyNever, wantReason: pod.ReasonOOMKilled, wantExit: 137},
		{name: "failed, to be restarted: back-off", runs: []container.Summary{run("c0", "0", "exited"), run("c1", "1", "exited")},
			infos:  map[string]runInfo{"c0": exited(1, false), "c1": exited(1, false)},
			policy: v1.RestartPolicyOnFailure, wantReason: pod.ReasonCrashLoopBackOff, restarts: 1, lastExit: ptr32(1)},
		{name: "restarted and running, the last run's end kept", runs: []container.Summary{run("c2", "2", "exited"), run("c3", "3", "running")},
			infos:  map[string]runInfo{"c2": exited(7, false), "c3": {Status: "running", StartedAt: t0}},
			policy: v1.RestartPolicyAlways, restarts: 3, lastExit: ptr32(7)},
		{name: "the engine could not start it", runs: []container.Summary{run("c0", "0", "created")},
			infos:  map[string]runInfo{"c0": {Status: "created", ExitCode: 0, Error: "no such file", Created: t0}},
			policy: v1.RestartPolicyNever, wantReason: pod.ReasonStartError, wantExit: 128},
		{name: "its next attempt could not be made", runs: []container.Summary{run("c0", "0", "exited")},
			infos:   map[string]runInfo{"c0": exited(1, false)},
			failure: containerError{Attempt: 1, Reason: pod.ReasonErrImagePull, Message: "pull failed"},
			policy:  v1.RestartPolicyAlways, wantReason: pod.ReasonErrImagePull, restarts: 1, lastExit: ptr32(1), noRun: true},
		{name: "an older failure is forgotten once a later attempt exists", runs: []container.Summary{run("c1", "1", "running")},
			infos:   map[string]runInfo{"c1": {Status: "running", StartedAt: t0}},
			failure: containerError{Attempt: 1, Reason: pod.ReasonErrImagePull},
			policy:  v1.RestartPolicyAlways, restarts: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &Backend{dataDir: t.TempDir(), inspects: inspectCache{entries: map[string]inspectEntry{}}}
			for id, info := range tc.infos {
				b.inspects.entries[id] = inspectEntry{state: info.Status, info: info}
			}
			s := b.containerStatus(context.Background(), c, tc.runs, tc.failure, tc.policy)
			var reason string
			var exit int32
			switch {
			case s.State.Waiting != nil:
				reason = s.State.Waiting.Reason
			case s.State.Terminated != nil:
				reason, exit = s.State.Terminated.Reason, s.State.Terminated.ExitCode
			case s.State.Running == nil:
				t.Fatalf("no state: %+v", s)
			}
			if reason != tc.wantReason || exit != tc.wantExit || s.RestartCount != tc.restarts {
				t.Errorf("state %+v, restarts %d; want reason %q exit %d restarts %d", s.State, s.RestartCount, tc.wantReason, tc.wantExit, tc.restarts)
			}
			if tc.lastExit != nil {
				if s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.ExitCode != *tc.lastExit {
					t.Errorf("lastState %+v, want terminated with exit %d", s.LastTerminationState, *tc.lastExit)
				}
			} else if s.LastTerminationState.Terminated != nil {
				t.Errorf("lastState %+v, want none", s.LastTerminationState)
			}
			if len(tc.runs) > 0 && !tc.noRun && (s.ContainerID != "docker://"+tc.runs[len(tc.runs)-1].ID || s.ImageID != "sha256:img") {
				t.Errorf("container id %q image id %q, want the last run's", s.ContainerID, s.ImageID)
			}
		})
	}
}

func ptr32(n int32) *int32 { return &n }
