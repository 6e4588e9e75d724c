package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
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
	var logged labtest.Buffer
	sup, err := NewSupervisor(cfg, launch, slog.New(slog.NewJSONHandler(&logged, nil)), nil)
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
	// The waits the supervisor chose, from its log; the time between attempts is at least each of them (only
	// a lower bound: a busy machine may run the next attempt later, never sooner).
	var chosen []time.Duration
	for _, line := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
		var rec struct {
			Msg     string        `json:"msg"`
			RetryIn time.Duration `json:"retry_in"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Msg == "backend failed to start" {
			chosen = append(chosen, rec.RetryIn)
		}
	}
	want := []time.Duration{40, 80, 160, 160, 160}
	if len(chosen) != len(want) {
		t.Fatalf("the supervisor logged %d retries (%v), want %d", len(chosen), chosen, len(want))
	}
	for i, w := range want {
		w *= time.Millisecond
		if chosen[i] != w {
			t.Errorf("wait chosen before attempt %d was %s, want %s (doubling from 40ms, capped at 160ms)", i+2, chosen[i], w)
		}
		if gap := attempts[i+1].Sub(attempts[i]); gap < w {
			t.Errorf("attempt %d came %s after the previous one, before its wait of %s", i+2, gap, w)
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
	// Long enough that the test's calls land while the backend is down, even on a busy machine.
	cfg.Supervision.BackoffInitial = 3 * time.Second
	cfg.Supervision.BackoffMax = 3 * time.Second

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

// Each start asks the backend to describe itself once: the launch does (to check its protocol version), and
// the supervisor takes the answer from it rather than asking again. A restart asks once more, no more.
func TestSupervisorDescribesOncePerStart(t *testing.T) {
	alpha := newMem("alpha")
	e := startEnv(t, testConfig(t, tempDir(t), "alpha"), map[string]*memBackend{"alpha": alpha})
	count := func() (int, int) {
		alpha.mu.Lock()
		defer alpha.mu.Unlock()
		return alpha.describes, alpha.launches
	}
	if d, l := count(); d != 1 || l != 1 {
		t.Fatalf("%d Describe calls for %d start(s), want one each", d, l)
	}
	if st := e.sup.States()[0]; st.Version != "test" {
		t.Fatalf("the backend's version is %q, want the launch's Describe answer %q", st.Version, "test")
	}
	alpha.Stop() // the process exits; the supervisor starts another
	waitFor(t, func() bool { _, l := count(); return l == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.sup.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	if d, l := count(); d != l {
		t.Fatalf("%d Describe calls for %d starts, want one each", d, l)
	}
}
