package main

import (
	"bufio"
	"context"
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

// The command serves on a unix socket with a real backend process, and on SIGTERM stops accepting, ends
// what is in flight, stops its backend and exits 0.
func TestSIGTERMStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
	tb := labtest.BuildBinary(t, "./shared/backend/internal/testbackend")
	sock := filepath.Join(dir, "d.sock")
	cfg := fmt.Sprintf(`
data_dir: %s
listen: {tcp: "", unix: %s}
timeouts: {shutdown: 10s}
routing: {default: mem}
backends:
  - name: mem
    binary: %s
`, filepath.Join(dir, "data"), sock, tb)
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)

	cmd := exec.Command(disp, "--config", cfgPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()

	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	post := func(ctx context.Context, path, body string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://unix"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return client.Do(req)
	}
	pod := `{"pod": {"metadata": {"uid": "u1", "name": "p", "namespace": "default"}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}`
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := post(context.Background(), "/create", pod)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
			if resp.StatusCode != 503 {
				t.Fatalf("create: %d %s", resp.StatusCode, b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dispatcher did not serve within 60s: %v\n%s", err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A followed log stream is in flight when SIGTERM comes.
	resp, err := post(context.Background(), "/getLogs", `{"PodUID": "u1", "PodName": "p", "Namespace": "default", "ContainerName": "c", "Opts": {"Follow": true}}`)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("follow logs: %v %v", err, resp)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	backendPID := findChild(t, cmd.Process.Pid, tb)

	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit within 15s of SIGTERM\n%s", stderr.String())
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("shutdown took %s: the follow stream held it", d)
	}
	// The stream ended rather than being cut mid-line, the backend process is gone, the socket removed.
	if _, err := io.ReadAll(r); err != nil {
		t.Errorf("the follow stream did not end cleanly: %v", err)
	}
	if backendPID != 0 {
		if err := syscall.Kill(backendPID, 0); err == nil {
			t.Errorf("backend process %d still runs after the dispatcher exited", backendPID)
		}
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the unix socket was left behind: %v", err)
	}
	if !strings.Contains(stderr.String(), "backend stopped") {
		t.Errorf("the backend was not stopped gracefully:\n%s", stderr.String())
	}
}

// findChild returns the pid of the child of parent that runs binary. Other tests' processes may run the same
// binary at the same time (the test binaries are built once per checkout), so the parent is what tells ours.
func findChild(t *testing.T, parent int, binary string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		// Another test process may have rebuilt the binary since (a rename over it): the running one then
		// shows as "<path> (deleted)".
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || strings.TrimSuffix(exe, " (deleted)") != binary {
			continue
		}
		// /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after its ')'.
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		var state string
		var ppid int
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			if _, err := fmt.Sscanf(string(stat[i+1:]), " %s %d", &state, &ppid); err == nil && ppid == parent {
				return pid
			}
		}
	}
	t.Fatalf("no child of process %d runs %s", parent, binary)
	return 0
}

// A port in use is reported before any backend is launched: the command exits at once naming the address, and
// never starts its backends.
func TestAddressInUseFailsBeforeBackends(t *testing.T) {
	disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
	tb := labtest.BuildBinary(t, "./shared/backend/internal/testbackend")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, c := range []struct{ name, listen, metrics string }{
		{"listen.tcp", taken.Addr().String(), ""},
		{"metrics.listen", "127.0.0.1:0", taken.Addr().String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := fmt.Sprintf(`
data_dir: %s
listen: {tcp: %q}
metrics: {listen: %q}
routing: {default: mem}
backends:
  - name: mem
    binary: %s
`, filepath.Join(t.TempDir(), "data"), c.listen, c.metrics, tb)
			cfgPath := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, disp, "--config", cfgPath).CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("the dispatcher did not exit with an error (err %v):\n%s", err, out)
			}
			if !strings.Contains(string(out), c.name) || !strings.Contains(string(out), taken.Addr().String()) {
				t.Errorf("the error does not name %s and the address %s:\n%s", c.name, taken.Addr(), out)
			}
			if strings.Contains(string(out), "backend up") || strings.Contains(string(out), "plugin started") {
				t.Errorf("a backend was launched before the address was found in use:\n%s", out)
			}
		})
	}
}
