package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// Backoff and restart logic, through the launcher seam: a launcher that fails a few times.
func TestSupervisorBackoffIsDoublingAndCapped(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Supervision.BackoffInitial = 40 * time.Millisecond
	cfg.Supervision.BackoffMax = 160 * time.Millisecond
	m := newMem("alpha")
	var mu sync.Mutex
	var attempts []time.Time
	const failures = 5
	launch := func(ctx context.Context, spec LaunchSpec) (Instance, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		if len(attempts) <= failures {
			return nil, errors.New("the binary crashed at start")
		}
		return m.launch()
	}
	sup, err := NewSupervisor(cfg, launch, quietLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	sup.Start(context.Background())
	defer sup.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// While failing, the backend is unavailable with the launcher's reason.
	time.Sleep(10 * time.Millisecond)
	if _, _, err := sup.Backend("alpha"); backend.KindOf(err) != backend.KindUnavailable {
		t.Fatalf("a backend failing to start is not unavailable: %v", err)
	}
	if err := sup.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{40, 80, 160, 160, 160}
	for i, w := range want {
		gap := attempts[i+1].Sub(attempts[i])
		w *= time.Millisecond
		if gap < w || gap > w+150*time.Millisecond {
			t.Errorf("wait before attempt %d was %s, want %s", i+2, gap, w)
		}
	}
	if st := sup.States()[0]; !st.Up || st.Restarts != failures {
		t.Fatalf("state after recovery: %+v", st)
	}
}

// A real backend process killed with SIGKILL mid-run is restarted; meanwhile its pods keep their last
// known status, and after the restart reconciliation finds the pods the new process does not have.
func TestSupervisorRestartsKilledBackend(t *testing.T) {
	bin := labtest.BuildBinary(t, "./shared/backend/internal/testbackend")
	cfg := testConfig(t, tempDir(t), "mem")
	cfg.Backends[0].Binary = bin
	cfg.Supervision.BackoffInitial = 200 * time.Millisecond
	cfg.Supervision.BackoffMax = time.Second

	var mu sync.Mutex
	var procs []*backend.Process
	launch := func(ctx context.Context, spec LaunchSpec) (Instance, error) {
		p, err := backend.Launch(ctx, backend.LaunchConfig{Name: spec.Name, Path: spec.Path, Env: spec.Env, Logger: spec.Logger})
		if err != nil {
			return nil, err
		}
		mu.Lock()
		procs = append(procs, p)
		mu.Unlock()
		return p, nil
	}
	j, err := OpenJournal(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	sup, _ := NewSupervisor(cfg, launch, quietLogger(t), nil)
	srv, err := NewServer(Options{Config: cfg, Journal: j, Backends: sup, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sup.Start(context.Background())
	defer sup.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sup.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	e := &testEnv{t: t, http: hs}

	p := testPod("uid-k", "k")
	if code, body := e.do("POST", "/create", createBody(p)); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	statusOf := func() interlink.PodStatus {
		code, body := e.do("GET", "/status", []*v1.Pod{p})
		var st []interlink.PodStatus
		if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st) != 1 {
			t.Fatalf("status: %d %s", code, body)
		}
		return st[0]
	}
	if s := statusOf(); s.Containers[0].State.Running == nil {
		t.Fatalf("status before the kill: %+v", s)
	}

	mu.Lock()
	first := procs[0]
	mu.Unlock()
	if err := syscall.Kill(first.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Right after the kill (process dead, restart pending): the last known status, and create refused.
	<-first.Done()
	if s := statusOf(); s.Containers[0].State.Running == nil {
		t.Fatalf("status while the backend is down: %+v", s)
	}
	q := testPod("uid-q", "q")
	if code, body := e.do("POST", "/create", createBody(q)); code != 503 {
		t.Fatalf("create while the backend is down: %d %s", code, body)
	}
	if code, body := e.do("GET", "/status", "[]"); code != 200 || body != "{\"status\":\"ok\"}\n" {
		t.Fatalf("ping while the only backend is down: %d %q", code, body)
	}

	if err := sup.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := len(procs)
	mu.Unlock()
	if st := sup.States()[0]; n != 2 || st.Restarts != 1 {
		t.Fatalf("after the kill: %d launches, state %+v", n, st)
	}
	// The in-memory test backend lost its pods with its process: reconciliation marks the entry missing,
	// and the backend itself answers NotFound.
	waitFor(t, func() bool { e, _, _ := j.Get("uid-k"); return !e.MissingSince.IsZero() })
	if s := statusOf(); s.Containers[0].State.Terminated == nil || s.Containers[0].State.Terminated.Reason != "NotFound" {
		t.Fatalf("status after the restart: %+v", s)
	}
	// The restarted backend serves again.
	if code, body := e.do("POST", "/create", createBody(q)); code != 200 {
		t.Fatalf("create after the restart: %d %s", code, body)
	}
}
