// Package dispatchertest starts a real interlink-dispatcher process, built from this checkout, with the
// template backend (examples/backend-template) loaded from a config stanza, for tests that need a whole
// dispatcher and real pods without any engine of the lab: the template backend runs each container as a
// local process.
package dispatchertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// Stanza is the backend stanza of the config Start writes: the template backend, loaded like any other.
const Stanza = `backends:
  - name: process
    binary: %s
    config:
      max_pods: 500
`

// Dispatcher is a running dispatcher: its API on a unix socket, its data directory, its log file.
type Dispatcher struct {
	Socket  string
	DataDir string
	LogPath string
	Client  *http.Client // over the socket
	// TCP is the address of listen.tcp when StartTCP started it ("" otherwise).
	TCP string
	cmd *exec.Cmd
}

// Start builds the dispatcher and the template backend, starts the dispatcher on a config of its own (the
// template backend as its only, default backend; extra appended at the top level of the YAML), waits for
// /readyz to answer 200 and stops the process when t ends.
func Start(t testing.TB, extra string) *Dispatcher {
	t.Helper()
	return start(t, "", extra)
}

// StartTCP is Start with the API on a free loopback port too (Dispatcher.TCP), for tests of what only the TCP
// listeners do: access control.
func StartTCP(t testing.TB, extra string) *Dispatcher {
	t.Helper()
	return start(t, FreeAddr(t), extra)
}

// FreeAddr returns a loopback address with a port nothing listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func start(t testing.TB, tcp, extra string) *Dispatcher {
	t.Helper()
	disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
	tmpl := labtest.BuildBinary(t, "./examples/backend-template")
	dir, err := os.MkdirTemp("", "dispatchertest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &Dispatcher{Socket: filepath.Join(dir, "api.sock"), DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "dispatcher.log"), TCP: tcp}
	cfg := fmt.Sprintf("instance: dispatchertest\ndata_dir: %s\nlisten:\n  tcp: %q\n  unix: %s\nrouting:\n  default: process\nlog:\n  level: debug\n",
		d.DataDir, tcp, d.Socket) + fmt.Sprintf(Stanza, tmpl) + extra
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(disp, "--config", cfgPath)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(40 * time.Second):
			d.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(d.LogPath)
			t.Logf("the dispatcher's log:\n%s", log)
		}
	})
	d.Client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
	}}}
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(d.LogPath)
			t.Fatalf("the dispatcher exited (%v) before it was ready; its log:\n%s", err, log)
		default:
		}
		if resp, err := d.Client.Get("http://dispatcher/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(d.LogPath)
			t.Fatalf("the dispatcher was not ready within a minute; its log:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// PID is the dispatcher process's id.
func (d *Dispatcher) PID() int { return d.cmd.Process.Pid }

// Answer is one HTTP answer, read whole.
type Answer struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

// Do sends one request on the socket (body marshalled as JSON unless it is a string or []byte, nil for none)
// and returns the whole answer.
func (d *Dispatcher) Do(t testing.TB, method, path string, body any) Answer {
	t.Helper()
	return do(t, d.Client, "http://dispatcher", method, path, body, nil)
}

// DoAt is Do on a TCP address (d.TCP, metrics.listen), with extra request headers.
func (d *Dispatcher) DoAt(t testing.TB, addr, method, path string, body any, header http.Header) Answer {
	t.Helper()
	return do(t, http.DefaultClient, "http://"+addr, method, path, body, header)
}

func do(t testing.TB, client *http.Client, base, method, path string, body any, header http.Header) Answer {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	u := path
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return Answer{Method: method, Path: u, Status: resp.StatusCode, Header: resp.Header, Body: data}
}
