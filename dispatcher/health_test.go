package dispatcher

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// readyz answers /readyz of e.
func (e *testEnv) readyz(t *testing.T) (int, Readiness) {
	t.Helper()
	code, body := e.do("GET", "/readyz", nil)
	var rd Readiness
	if err := json.Unmarshal([]byte(body), &rd); err != nil {
		t.Fatalf("/readyz %d %q: %v", code, body, err)
	}
	return code, rd
}

// waitReadyz polls /readyz until ok holds for it, for at most within.
func (e *testEnv) waitReadyz(t *testing.T, within time.Duration, what string, ok func(int, Readiness) bool) Readiness {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, rd := e.readyz(t)
		if ok(code, rd) {
			return rd
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not %s within %s: %d %+v", what, within, code, rd)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A backend whose process runs but whose engine fails its health check is degraded: /readyz says 503 with the
// engine's error, interlink_dispatcher_backend_degraded is 1 and backend_up stays 1; it is ready again once
// the engine answers.
func TestReadyzDegradedEngine(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha", "beta")
	cfg.Supervision.HealthInterval = 50 * time.Millisecond
	m := NewMetrics(cfg, BuildInfo{}, quietLogger(t))
	mems := map[string]*memBackend{"alpha": newMem("alpha"), "beta": newMem("beta")}
	e := startEnvWith(t, cfg, mems, m)
	e.waitReadyz(t, 5*time.Second, "ready", func(code int, rd Readiness) bool { return code == 200 && rd.Ready })

	mems["alpha"].mu.Lock()
	mems["alpha"].capaErr = backend.Unavailable("the engine at unix:///nowhere does not answer")
	mems["alpha"].mu.Unlock()
	rd := e.waitReadyz(t, 5*time.Second, "degraded", func(code int, rd Readiness) bool { return code == 503 })
	if rd.Backends[0].State != "degraded" || !strings.Contains(rd.Backends[0].EngineError, "unix:///nowhere") ||
		rd.Backends[1].State != "up" || len(rd.Reasons) != 1 || !strings.Contains(rd.Reasons[0], `"alpha" is degraded`) {
		t.Fatalf("readyz with alpha's engine gone: %+v", rd)
	}
	s := e.scrape()
	s.want(t, 1, "interlink_dispatcher_backend_degraded", "backend=alpha")
	s.want(t, 1, "interlink_dispatcher_backend_up", "backend=alpha") // the process runs
	s.want(t, 0, "interlink_dispatcher_backend_degraded", "backend=beta")

	mems["alpha"].mu.Lock()
	mems["alpha"].capaErr = nil
	mems["alpha"].mu.Unlock()
	e.waitReadyz(t, 5*time.Second, "ready again", func(code int, rd Readiness) bool { return code == 200 && rd.Backends[0].State == "up" })
	e.scrape().want(t, 0, "interlink_dispatcher_backend_degraded", "backend=alpha")
}

// socketRelay serves a unix socket that relays every connection to the lab's Podman service until stop, after
// which nothing answers on its path: the engine, as the backend sees it, went away. The lab's service itself
// is left alone (other tests use it).
type socketRelay struct {
	path string
	l    net.Listener
	mu   sync.Mutex
	open []net.Conn
}

func newSocketRelay(t *testing.T, target string) *socketRelay {
	r := &socketRelay{path: filepath.Join(t.TempDir(), "podman.sock")}
	l, err := net.Listen("unix", r.path)
	if err != nil {
		t.Fatal(err)
	}
	r.l = l
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", target)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.open = append(r.open, c, up)
			r.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(r.stop)
	return r
}

// stop closes the socket (its path is removed) and every relayed connection.
func (r *socketRelay) stop() {
	r.l.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.open {
		c.Close()
	}
	r.open = nil
}

// The real Podman backend, started against a socket that relays to the lab's Podman service, is ready; once
// nothing answers on that socket any more, its process still runs but /readyz says it is degraded, with the
// engine's error, and answers 503.
func TestLabReadyzPodmanEngineGone(t *testing.T) {
	labtest.RequirePodman(t)
	relay := newSocketRelay(t, labtest.PodmanSocket)
	le := startLab(t, "podman", map[string]any{"uri": "unix://" + relay.path}, func(c *Config) {
		c.Supervision.HealthInterval = 200 * time.Millisecond
		c.Timeouts.Ping = 2 * time.Second
	})
	le.waitReadyz(t, 30*time.Second, "ready", func(code int, rd Readiness) bool { return code == 200 && rd.Ready })

	relay.stop()
	rd := le.waitReadyz(t, 30*time.Second, "degraded", func(code int, rd Readiness) bool { return code == 503 })
	b := rd.Backends[0]
	if b.State != "degraded" || !strings.Contains(b.EngineError, relay.path) {
		t.Fatalf("readyz with Podman's socket gone: %+v", rd)
	}
	// The process is up: the dispatcher did not restart it, and its calls still reach it (and fail as the
	// engine does, not as a dead backend).
	if st := le.sup.States()[0]; !st.Up || st.Restarts != 0 {
		t.Fatalf("backend state with its engine gone: %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bk, _, err := le.sup.Backend("podman")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bk.Capacity(ctx); err == nil || backend.KindOf(err) != backend.KindUnavailable {
		t.Fatalf("Capacity with the engine gone: %v (kind %v), want an unavailable engine", err, backend.KindOf(err))
	}
}
