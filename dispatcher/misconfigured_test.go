package dispatcher

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/adminapi"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// A backend process that exits with backend.ExitBadConfig is not restarted: it is misconfigured, with the
// sentence it said, in /readyz, the admin API and the refusals of its pods, and the log says so once. A
// backend that exits with another status is restarted as before.
func TestMisconfiguredBackendIsNotRestarted(t *testing.T) {
	bin := labtest.BuildBinary(t, "./dispatcher/testdata/exitbadconfig")
	const said = "config key socket: 42 is not a path"
	for _, tc := range []struct {
		name string
		args []string
	}{{"exit 78", nil}, {"exit 1", []string{"crash"}}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, tempDir(t), "bad")
			cfg.Backends[0].Binary, cfg.Backends[0].Args = bin, tc.args
			var mu sync.Mutex
			launches := 0
			launch := func(ctx context.Context, spec LaunchSpec) (Instance, error) {
				mu.Lock()
				launches++
				mu.Unlock()
				return LaunchProcess(ctx, spec)
			}
			var logged labtest.Buffer
			log := slog.New(slog.NewJSONHandler(&logged, nil))
			j, err := OpenJournal(cfg.DataDir)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			sup, err := NewSupervisor(cfg, launch, log, nil)
			if err != nil {
				t.Fatal(err)
			}
			srv, err := NewServer(Options{Config: cfg, Journal: j, Backends: sup, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			sup.Start(context.Background())
			defer sup.Stop()
			hs := httptest.NewServer(srv.Handler())
			defer hs.Close()
			e := &testEnv{t: t, http: hs}

			if tc.args != nil {
				// Restarted with the backoff (10 ms to 50 ms here) for as long as it fails.
				deadline := time.Now().Add(20 * time.Second)
				for sup.States()[0].Restarts < 2 {
					if time.Now().After(deadline) {
						t.Fatalf("a backend exiting 1 was not restarted: %+v", sup.States()[0])
					}
					time.Sleep(20 * time.Millisecond)
				}
				if st := sup.States()[0]; st.Misconfigured != "" {
					t.Fatalf("a backend exiting 1 is misconfigured: %+v", st)
				}
				return
			}
			deadline := time.Now().Add(20 * time.Second)
			for sup.States()[0].Misconfigured == "" {
				if time.Now().After(deadline) {
					t.Fatalf("the backend is not marked misconfigured: %+v", sup.States()[0])
				}
				time.Sleep(20 * time.Millisecond)
			}
			// Many backoffs later, still one launch.
			time.Sleep(300 * time.Millisecond)
			mu.Lock()
			n := launches
			mu.Unlock()
			if st := sup.States()[0]; n != 1 || st.Restarts != 0 || st.Up || !strings.Contains(st.Misconfigured, said) {
				t.Fatalf("after %d launches: %+v", n, st)
			}

			code, body := e.do(http.MethodGet, "/readyz", nil)
			var rd Readiness
			if err := json.Unmarshal([]byte(body), &rd); err != nil || code != http.StatusServiceUnavailable {
				t.Fatalf("/readyz: %d %q", code, body)
			}
			if len(rd.Reasons) != 1 || !strings.Contains(rd.Reasons[0], `backend "bad" is misconfigured: `+said) ||
				strings.Contains(rd.Reasons[0], "\n") || rd.Backends[0].State != StateMisconfigured {
				t.Fatalf("/readyz says %+v", rd)
			}
			var list adminapi.BackendList
			if code, body := adminGet(t, e, "/api/v1/backends", &list); code != http.StatusOK ||
				list.Backends[0].State != StateMisconfigured || !strings.Contains(list.Backends[0].Reason, said) {
				t.Fatalf("/api/v1/backends: %d %q", code, body)
			}
			if code, body := e.do(http.MethodPost, "/create", createBody(testPod("uid-m", "m"))); code != http.StatusServiceUnavailable ||
				!strings.Contains(body, said) || strings.Contains(body, "retry in a minute") {
				t.Fatalf("create on it: %d %q", code, body)
			}
			var once, failed int
			for _, line := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
				var rec struct {
					Msg string `json:"msg"`
					Err string `json:"err"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				switch {
				case strings.HasPrefix(rec.Msg, "backend misconfigured"):
					once++
					if !strings.Contains(rec.Err, said) {
						t.Errorf("the log line does not say why: %s", line)
					}
				case rec.Msg == "backend failed to start":
					failed++
				}
			}
			if once != 1 || failed != 0 {
				t.Fatalf("the log says misconfigured %d times and failed to start %d times, want once and never:\n%s", once, failed, logged.String())
			}
		})
	}
}

// exitsBadConfig is a test backend whose process, once it has exited, says it exited with
// backend.ExitBadConfig, as a *backend.Process whose config turned out wrong after it started does.
type exitsBadConfig struct{ *memBackend }

func (x exitsBadConfig) BadConfig() error {
	select {
	case <-x.Done():
		return &backend.BadConfigError{Backend: x.name, Reason: "config key socket: /run/gone.sock was removed"}
	default:
		return nil
	}
}

// A backend that exits with backend.ExitBadConfig after it was up is not restarted either.
func TestBackendExitingMisconfiguredIsNotRestarted(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	m := newMem("alpha")
	var mu sync.Mutex
	launches := 0
	launch := func(ctx context.Context, spec LaunchSpec) (Instance, error) {
		mu.Lock()
		launches++
		mu.Unlock()
		inst, err := m.launch()
		if err != nil {
			return nil, err
		}
		return exitsBadConfig{inst.(*memBackend)}, nil
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
	if err := sup.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	m.Stop() // the process exits
	for sup.States()[0].Misconfigured == "" {
		if ctx.Err() != nil {
			t.Fatalf("not marked misconfigured: %+v", sup.States()[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // many backoffs of 10 ms to 50 ms
	mu.Lock()
	defer mu.Unlock()
	if st := sup.States()[0]; launches != 1 || st.Up || !strings.Contains(st.Misconfigured, "/run/gone.sock") {
		t.Fatalf("after %d launches: %+v", launches, st)
	}
	if _, _, err := sup.Backend("alpha"); backend.KindOf(err) != backend.KindUnavailable || !strings.Contains(err.Error(), "misconfigured") {
		t.Fatalf("Backend: %v", err)
	}
	if n := strings.Count(logged.String(), `"msg":"backend misconfigured`); n != 1 || strings.Contains(logged.String(), `"msg":"backend exited"`) {
		t.Fatalf("the log says misconfigured %d times (want once, and no restart):\n%s", n, logged.String())
	}
}
