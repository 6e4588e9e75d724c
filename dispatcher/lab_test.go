package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// labBackends are the real backends the end-to-end tests run pods on, with the engine each needs.
var labBackends = []struct {
	name    string
	require func(testing.TB)
	config  map[string]any
}{
	{"docker", labtest.RequireDocker, map[string]any{}},
	{"podman", labtest.RequirePodman, map[string]any{"uri": "unix://" + labtest.PodmanSocket}},
	// A job with no memory of its own would get the whole node's from SLURM: it would wait for the node to be
	// empty, and every job submitted after it would wait behind it.
	{"slurm", labtest.RequireSLURM, map[string]any{"runtime": "podman", "default_memory": "128M"}},
}

// labEnv is the dispatcher over one real backend binary, with the launched processes recorded so that a
// test can kill one.
type labEnv struct {
	*testEnv
	mu    sync.Mutex
	procs []*backend.Process
}

// startLab starts the dispatcher over the real backend name with its config section conf; edits change the
// dispatcher's config first (e.g. the backend's policy).
func startLab(t *testing.T, name string, conf map[string]any, edits ...func(*Config)) *labEnv {
	t.Helper()
	bin := labtest.BuildBackend(t, "./cmd/backend-"+name)
	cfg := testConfig(t, tempDir(t), name)
	cfg.Instance = fmt.Sprintf("dispatcher-test-%d", time.Now().UnixNano())
	cfg.Backends[0].Binary = bin
	cfg.Backends[0].Config = conf
	cfg.Supervision.BackoffInitial = 200 * time.Millisecond
	cfg.Supervision.BackoffMax = time.Second
	for _, edit := range edits {
		edit(&cfg)
	}
	return startOver(t, cfg, time.Minute)
}

// startOver starts the dispatcher of cfg over the backend processes it names, launched for real and recorded,
// and waits up to up for every backend to be up.
func startOver(t *testing.T, cfg Config, up time.Duration) *labEnv {
	t.Helper()
	le := &labEnv{}
	launch := func(ctx context.Context, spec LaunchSpec) (Instance, error) {
		p, err := backend.Launch(ctx, backend.LaunchConfig{Name: spec.Name, Path: spec.Path, Env: spec.Env, Logger: spec.Logger})
		if err != nil {
			return nil, err
		}
		le.mu.Lock()
		le.procs = append(le.procs, p)
		le.mu.Unlock()
		return p, nil
	}
	j, err := OpenJournal(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	sup, _ := NewSupervisor(cfg, launch, quietLogger(t), nil)
	srv, err := NewServer(Options{Config: cfg, Journal: j, Backends: sup, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sup.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), up)
	defer cancel()
	if err := sup.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	le.testEnv = &testEnv{t: t, cfg: cfg, journal: j, sup: sup, srv: srv, http: httptest.NewServer(srv.Handler())}
	t.Cleanup(le.close)
	return le
}

func labPod(uid, script string) *v1.Pod {
	p := testPod(uid, "lab-"+uid)
	p.Spec.Containers[0].Image = labtest.BusyboxImage
	p.Spec.Containers[0].Command = []string{"sh", "-c", script}
	return p
}

func (e *testEnv) podStatus(p *v1.Pod) interlink.PodStatus {
	e.t.Helper()
	code, body := e.do("GET", "/status", []*v1.Pod{p})
	var st []interlink.PodStatus
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st) != 1 {
		e.t.Fatalf("status: %d %s", code, body)
	}
	return st[0]
}

// waitState polls the pod's status until ok says so, failing after a minute with the last status seen.
func (e *testEnv) waitState(p *v1.Pod, what string, ok func(v1.ContainerState) bool) v1.ContainerState {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st := e.podStatus(p)
		if len(st.Containers) != len(p.Spec.Containers) {
			e.t.Fatalf("status has %d containers for %d in the spec: %+v", len(st.Containers), len(p.Spec.Containers), st)
		}
		s := st.Containers[0].State
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pod %s not %s within a minute; last status %+v", p.UID, what, s)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func running(s v1.ContainerState) bool    { return s.Running != nil }
func terminated(s v1.ContainerState) bool { return s.Terminated != nil }

// create → Running → Succeeded with exit code 0 → logs → delete, and a failing pod reported Failed with
// its exit code, on each real backend of the lab.
func TestLabPodLifecycle(t *testing.T) {
	t.Parallel()
	for _, lb := range labBackends {
		t.Run(lb.name, func(t *testing.T) {
			t.Parallel() // each backend under a dispatcher of its own
			lb.require(t)
			e := startLab(t, lb.name, lb.config)
			ok := labPod(fmt.Sprintf("lab-ok-%d", time.Now().UnixNano()), "echo hello from the dispatcher; sleep 15")
			bad := labPod(fmt.Sprintf("lab-bad-%d", time.Now().UnixNano()), "echo failing; exit 3")
			for _, p := range []*v1.Pod{ok, bad} {
				code, body := e.do("POST", "/create", createBody(p))
				var answer interlink.CreateStruct
				if code != 200 || json.Unmarshal([]byte(body), &answer) != nil {
					t.Fatalf("create: %d %s", code, body)
				}
				defer e.do("POST", "/delete", p)
				// As the virtual kubelet does: it keeps the create's answer on the pod.
				if p.Annotations == nil {
					p.Annotations = map[string]string{}
				}
				p.Annotations[annotationJobID] = answer.PodJID
			}
			e.waitState(ok, "running", running)
			s := e.waitState(ok, "terminated", terminated)
			if s.Terminated.ExitCode != 0 {
				t.Fatalf("the succeeding pod: %+v", s.Terminated)
			}
			code, logs := e.do("GET", "/getLogs", interlink.LogStruct{Namespace: ok.Namespace, PodUID: string(ok.UID), PodName: ok.Name, ContainerName: "main"})
			if code != 200 || !strings.Contains(logs, "hello from the dispatcher") {
				t.Fatalf("logs: %d %q", code, logs)
			}
			s = e.waitState(bad, "terminated", terminated)
			if s.Terminated.ExitCode != 3 {
				t.Fatalf("the failing pod: %+v", s.Terminated)
			}
			for _, p := range []*v1.Pod{ok, bad} {
				if code, body := e.do("DELETE", "/delete", p); code != 200 {
					t.Fatalf("delete: %d %s", code, body)
				}
				if _, found, _ := e.journal.Get(string(p.UID)); found {
					t.Fatal("delete left the journal entry")
				}
			}
			// Deleted: no backend knows the pod any more.
			if s := e.podStatus(ok).Containers[0].State; s.Terminated == nil || s.Terminated.Reason != "NotFound" {
				t.Fatalf("status after delete: %+v", s)
			}
		})
	}
}

// A real backend killed with SIGKILL while its pod runs is restarted, and the pod keeps being reported,
// first from the last known status, then from the engine through the new process.
func TestLabBackendKilledMidRun(t *testing.T) {
	t.Parallel()
	for _, lb := range labBackends {
		t.Run(lb.name, func(t *testing.T) {
			t.Parallel() // each backend under a dispatcher of its own
			lb.require(t)
			e := startLab(t, lb.name, lb.config)
			p := labPod(fmt.Sprintf("lab-kill-%d", time.Now().UnixNano()), "sleep 120")
			if code, body := e.do("POST", "/create", createBody(p)); code != 200 {
				t.Fatalf("create: %d %s", code, body)
			}
			defer e.do("POST", "/delete", p)
			e.waitState(p, "running", running)

			e.mu.Lock()
			first := e.procs[0]
			e.mu.Unlock()
			syscall.Kill(first.PID(), syscall.SIGKILL)
			<-first.Done()
			if s := e.podStatus(p).Containers[0].State; s.Running == nil {
				t.Fatalf("status while the backend is down: %+v", s)
			}
			// The supervisor learns of the exit from go-plugin a moment after the process is gone: until it
			// has, the backend still shows up, with no restart.
			deadline := time.Now().Add(time.Minute)
			for st := e.sup.States()[0]; st.Restarts < 1 || !st.Up; st = e.sup.States()[0] {
				if time.Now().After(deadline) {
					t.Fatalf("the killed backend is not back within a minute with a restart recorded: %+v", st)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if s := e.podStatus(p).Containers[0].State; s.Running == nil {
				t.Fatalf("status from the restarted backend: %+v", s)
			}
			// Reconciliation kept the entry: the engine still has the pod.
			time.Sleep(500 * time.Millisecond)
			if ent, found, _ := e.journal.Get(string(p.UID)); !found || !ent.MissingSince.IsZero() {
				t.Fatalf("journal entry after the restart: %+v (found %v)", ent, found)
			}
			grace := int64(1)
			p.Spec.TerminationGracePeriodSeconds = &grace
			if code, body := e.do("DELETE", "/delete", p); code != 200 {
				t.Fatalf("delete: %d %s", code, body)
			}
		})
	}
}
