package dispatcher

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveEnv serves e's server on its configured listeners (TCP on a free port, and the socket when set) and
// returns their addresses; the server stops with the test.
func serveEnv(t *testing.T, e *testEnv) []net.Addr {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan []net.Addr, 1)
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, func(a []net.Addr) { addrs <- a }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	select {
	case a := <-addrs:
		return a
	case err := <-served:
		t.Fatal(err)
	}
	return nil
}

// connRefusals counts ConnectionRefused by listener.
type connRefusals struct {
	NopObserver
	mu sync.Mutex
	n  map[string]int
}

func (o *connRefusals) ConnectionRefused(l string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[l]++
}

func (o *connRefusals) count(l string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[l]
}

// 50 connections that send their headers and half a body are closed once timeouts.read has passed, and the
// goroutines serving them go away; without a read timeout they stayed open for good.
func TestSlowBodiesAreCut(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Listen.TCP = "127.0.0.1:0"
	cfg.Timeouts.Read = time.Second
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	addr := serveEnv(t, e)[0].String()
	before := runtime.NumGoroutine()

	const n = 50
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"pod\":")
		conns[i] = c
	}
	start := time.Now()
	var wg sync.WaitGroup
	closedAfter := make([]time.Duration, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, c) // the server's 400, if it gets one out, then EOF
			closedAfter[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, d := range closedAfter {
		if d > 4*time.Second {
			t.Fatalf("connection %d with half a body was closed after %s, with timeouts.read 1s", i, d)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+5 {
		t.Fatalf("%d goroutines after the slow connections were cut, %d before them", g, before)
	}
	// The server still answers.
	if resp, err := http.Post("http://"+addr+"/status", "application/json", strings.NewReader("[]")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the slow bodies: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// A client gets limits.max_connections_per_client connections at once on TCP, and on the unix socket all
// clients together get as many; one more is answered 503, closed and counted, and a place freed is usable.
func TestConnectionsPerClientBounded(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	sock := filepath.Join(t.TempDir(), "d.sock")
	cfg.Listen = ListenConfig{TCP: "127.0.0.1:0", Unix: sock}
	cfg.Limits.MaxConnectionsPerClient = 4
	obs := &connRefusals{}
	e := startEnvWith(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")}, obs)
	addrs := serveEnv(t, e)
	for _, a := range addrs {
		network, address := a.Network(), a.String()
		var held []net.Conn
		for range 4 {
			c, err := net.Dial(network, address)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			held = append(held, c)
		}
		// The held connections serve.
		fmt.Fprintf(held[0], "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if line, err := bufio.NewReader(held[0]).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("%s: a connection within the limit answered %q %v", network, line, err)
		}
		over, err := net.Dial(network, address)
		if err != nil {
			t.Fatal(err)
		}
		over.SetReadDeadline(time.Now().Add(5 * time.Second))
		answer, _ := io.ReadAll(over)
		over.Close()
		if !strings.HasPrefix(string(answer), "HTTP/1.1 503") || !strings.Contains(string(answer), "limits.max_connections_per_client") {
			t.Fatalf("%s: the connection over the limit got %q", network, answer)
		}
		if got := obs.count(network); got != 1 {
			t.Fatalf("%s: %d refusals counted, want 1", network, got)
		}
		held[3].Close()
		// The place is given back when the server sees the close; then a new connection serves.
		ok := false
		for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); {
			c, err := net.Dial(network, address)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			ok = strings.Contains(line, "200")
			if !ok {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if !ok {
			t.Fatalf("%s: no connection served after one of the held ones closed", network)
		}
	}
}

// A followed log outlives timeouts.write and timeouts.read: it goes on as long as it has lines to send.
func TestFollowOutlivesWriteTimeout(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Listen.TCP = "127.0.0.1:0"
	cfg.Timeouts.Write = 500 * time.Millisecond
	cfg.Timeouts.Read = 500 * time.Millisecond
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	addr := serveEnv(t, e)[0].String()
	if code, body := e.do("POST", "/create", createBody(testPod("uid-follow", "follow"))); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	req := `{"PodUID":"uid-follow","Namespace":"default","PodName":"follow","ContainerName":"main","Opts":{"Follow":true}}`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/getLogs", strings.NewReader(req))
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	sc := bufio.NewScanner(resp.Body)
	lines := 0
	for sc.Scan() && time.Since(start) < 2*time.Second {
		lines++
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("the followed log ended after %s and %d lines (%v), with timeouts.write 500ms", d, lines, sc.Err())
	}
}

// A create or a delete that takes longer than timeouts.write, within its own budget (timeouts.create; the
// grace period plus timeouts.delete), is still answered: the write deadline is the request's budget plus
// timeouts.write.
func TestSlowCreateAndDeleteAnswered(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Listen.TCP = "127.0.0.1:0"
	cfg.Timeouts.Write = 300 * time.Millisecond
	mem := newMem("alpha")
	mem.createDelay, mem.deleteDelay = time.Second, time.Second
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": mem})
	url := "http://" + serveEnv(t, e)[0].String()
	p := testPod("uid-slow-answer", "slow")
	grace := int64(2)
	p.Spec.TerminationGracePeriodSeconds = &grace
	for _, step := range []struct {
		path string
		body any
	}{{"/create", createBody(p)}, {"/delete", p}} {
		raw, _ := json.Marshal(step.body)
		resp, err := http.Post(url+step.path, "application/json", strings.NewReader(string(raw)))
		if err != nil {
			t.Fatalf("%s taking 1s with timeouts.write 300ms: %v", step.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", step.path, resp.StatusCode, body)
		}
	}
}
