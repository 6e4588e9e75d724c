package dispatcher

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	v1 "k8s.io/api/core/v1"
)

// Serve answers on TCP and on the unix socket at once, and removes the socket when it stops.
func TestServeTCPAndUnix(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	sock := filepath.Join(t.TempDir(), "run", "d.sock")
	cfg.Listen = ListenConfig{TCP: "127.0.0.1:0", Unix: sock}
	// A stale socket file from a previous run is replaced.
	os.MkdirAll(filepath.Dir(sock), 0o755)
	if l, err := net.Listen("unix", sock); err == nil {
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close()
	}
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})

	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan []net.Addr, 1)
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, func(a []net.Addr) { addrs <- a }) }()
	var got []net.Addr
	select {
	case got = <-addrs:
	case err := <-served:
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("listening on %v", got)
	}
	ping := func(c *http.Client, url string) string {
		resp, err := c.Post(url+"/status", "application/json", strings.NewReader("[]"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	unixClient := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	if a, b := ping(http.DefaultClient, "http://"+got[0].String()), ping(unixClient, "http://unix"); !strings.Contains(a, `"ok"`) || a != b {
		t.Fatalf("tcp answered %q, unix %q", a, b)
	}
	// A second server on the same socket is refused while the first one listens.
	cfg2 := cfg
	cfg2.Listen = ListenConfig{Unix: sock}
	s2 := &Server{cfg: cfg2, log: quietLogger(t)}
	if err := s2.Serve(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server on the same socket: %v", err)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestPanicBecomes500(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	e.srv.routes = func(r chi.Router) { r.Get("/boom", func(http.ResponseWriter, *http.Request) { panic("boom") }) }
	e.http.Config.Handler = e.srv.Handler()
	if code, body := e.do("GET", "/boom", nil); code != 500 || !strings.Contains(body, "a bug") {
		t.Fatalf("panic answered %d %q", code, body)
	}
	// The server still serves.
	if code, _ := e.do("GET", "/status", "[]"); code != 200 {
		t.Fatalf("after a panic: %d", code)
	}
}

// A panic met while handling one backend's answer, in the goroutines a status batch or the ping starts (out of
// the handlers' recoverer's reach), costs that answer alone: the pod gets its last known status, the ping
// leaves the backend out, and the dispatcher goes on serving.
func TestPanicInBackendFanOutIsContained(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	mem := newMem("alpha")
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": mem})
	p := testPod("uid-panic", "panic", "main")
	if code, body := e.do("POST", "/create", createBody(p)); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	mem.mu.Lock()
	mem.panics = true
	mem.mu.Unlock()
	code, body := e.do("POST", "/status", []*v1.Pod{p})
	if code != 200 || !strings.Contains(body, "uid-panic") {
		t.Fatalf("status while the backend's answer panics: %d %s", code, body)
	}
	if code, body := e.do("GET", "/status", nil); code != 200 {
		t.Fatalf("ping while the backend's answer panics: %d %s", code, body)
	}
	mem.mu.Lock()
	mem.panics = false
	mem.mu.Unlock()
	if code, _ := e.do("POST", "/status", []*v1.Pod{p}); code != 200 {
		t.Fatalf("after the panics: %d", code)
	}
}
