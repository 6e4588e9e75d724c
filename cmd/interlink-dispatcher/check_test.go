package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// runCmd runs the binary with args and returns its stdout, stderr and exit code.
func runCmd(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("cannot run %s: %v", bin, err)
	}
	return out.String(), errOut.String(), code
}

// Every binary prints its name, the version and commit stamped with -X main.version/main.commit, and the Go
// version, and exits 0; none of them needs anything else to do so (a backend is not run by a dispatcher).
func TestVersionOfEveryBinary(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=v9.8.7-test -X main.commit=c0ffee", "-o", dir+"/", "./cmd/...")
	build.Dir = labtest.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
	cmds, err := filepath.Glob(filepath.Join(labtest.RepoRoot(), "cmd", "*"))
	if err != nil || len(cmds) < 6 {
		t.Fatalf("commands under cmd/: %v %v", cmds, err)
	}
	for _, c := range cmds {
		name := filepath.Base(c)
		for _, flag := range []string{"--version", "-version"} {
			out, errOut, code := runCmd(t, filepath.Join(dir, name), flag)
			want := fmt.Sprintf("%s v9.8.7-test (commit c0ffee, %s)\n", name, runtime.Version())
			if code != 0 || out != want {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want exit 0 and %q", name, flag, code, out, errOut, want)
			}
		}
	}
}

// labConfig is the repository's config.yaml with data_dir at data and each backend's binary the test build
// of it: the config an operator runs, on this lab.
func labConfig(t *testing.T, data string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(labtest.RepoRoot(), "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := regexp.MustCompile(`(?m)^data_dir: .*$`).ReplaceAllString(string(raw), "data_dir: "+data)
	for _, b := range []string{"docker", "podman", "slurm"} {
		bin := labtest.BuildBackend(t, "./cmd/backend-"+b)
		old := "binary: bin/backend-" + b
		if !strings.Contains(cfg, old) {
			t.Fatalf("config.yaml has no %q", old)
		}
		cfg = strings.Replace(cfg, old, "binary: "+bin, 1)
	}
	return cfg
}

func writeConfig(t *testing.T, dir, cfg string) string {
	t.Helper()
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// check against the lab with the repository's config: every backend starts, and its line says its version,
// its engine and its capacity; it exits 0, and data_dir is left as it was (not even created).
func TestCheckLabBackends(t *testing.T) {
	labtest.RequireDocker(t)
	labtest.RequirePodman(t)
	labtest.RequireSLURM(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgPath := writeConfig(t, dir, labConfig(t, data))
	disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")

	out, errOut, code := runCmd(t, disp, "check", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("check exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "config "+cfgPath+": ok: ") || !strings.Contains(lines[0], "3 backend(s) enabled") {
		t.Fatalf("want a config line and three backend lines, got:\n%s", out)
	}
	for i, want := range []struct{ name, engine string }{
		{"docker", "engine Docker Engine "}, {"podman", "engine Podman "}, {"slurm", "engine slurm-wlm "},
	} {
		line := lines[i+1]
		if !strings.HasPrefix(line, want.name+": ok: version ") || !strings.Contains(line, want.engine) ||
			!regexp.MustCompile(`capacity cpu \d+(\.\d+)?, memory \d`).MatchString(line) {
			t.Errorf("line for %s: %q; want its version, %q and its cpu and memory", want.name, line, want.engine)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("check touched data_dir %s: %v", data, err)
	}
}

// A config with several mistakes: check reports them (the unknown key at least, with its path), launches
// nothing and exits 1.
func TestCheckBadConfig(t *testing.T) {
	dir := t.TempDir()
	disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
data_dir: %s
listen: {tcp: "127.0.0.1:0"}
timeouts: {creat: 30s}
backends:
  - name: mem
    binary: /nonexistent/backend
`, filepath.Join(dir, "data")))
	out, errOut, code := runCmd(t, disp, "check", "--config", cfgPath)
	if code != 1 {
		t.Fatalf("check of a bad config exited %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "config "+cfgPath+": FAILED") || !strings.Contains(out, "timeouts.creat") {
		t.Errorf("the bad key is not named:\n%s", out)
	}
	if strings.Contains(out, "mem:") {
		t.Errorf("a backend was tried though the config is invalid:\n%s", out)
	}

	// A missing config file is a problem too, said as one.
	out, _, code = runCmd(t, disp, "check", "--config", filepath.Join(dir, "missing.yaml"))
	if code != 1 || !strings.Contains(out, "cannot read the config file") {
		t.Errorf("check of a missing file: exit %d:\n%s", code, out)
	}
	// So is a usage mistake, with status 2.
	if _, _, code := runCmd(t, disp, "check", "extra"); code != 2 {
		t.Errorf("check with a stray argument exited %d, want 2", code)
	}
}

// A backend's binary is missing: the config names it, and check exits 1 without trying the others.
func TestCheckMissingBinary(t *testing.T) {
	dir := t.TempDir()
	disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
	tb := labtest.BuildBinary(t, "./shared/backend/internal/testbackend")
	missing := filepath.Join(dir, "bin", "backend-gone")
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
data_dir: %s
listen: {tcp: "127.0.0.1:0"}
routing: {default: mem}
backends:
  - name: mem
    binary: %s
  - name: gone
    binary: %s
`, filepath.Join(dir, "data"), tb, missing))
	out, errOut, code := runCmd(t, disp, "check", "--config", cfgPath)
	if code != 1 {
		t.Fatalf("check exited %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "FAILED") || !strings.Contains(out, "backends[1].binary") || !strings.Contains(out, missing) {
		t.Errorf("the missing binary is not named with its key:\n%s", out)
	}
	if strings.Contains(out, "mem: ok") {
		t.Errorf("a backend was tried though the config is invalid:\n%s", out)
	}
}

// One backend starts, another's binary is there but the backend fails to start, a third is not a backend at
// all, a fourth is disabled: each enabled one has its line in config order, the failed ones say what is
// wrong in the backend's own words, and the check exits 1.
func TestCheckFailingBackends(t *testing.T) {
	dir := t.TempDir()
	disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
	tb := labtest.BuildBinary(t, "./shared/backend/internal/testbackend")
	notBackend, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
data_dir: %s
listen: {tcp: "127.0.0.1:0"}
routing: {default: mem}
supervision: {start_timeout: 10s}
backends:
  - name: mem
    binary: %[2]s
  - name: broken
    binary: %[2]s
    config: {failStart: "config key engine: the engine is on fire"}
  - name: impostor
    binary: %[3]s
  - name: off
    binary: %[2]s
    enabled: false
`, filepath.Join(dir, "data"), tb, notBackend))
	out, errOut, code := runCmd(t, disp, "check", "--config", cfgPath)
	if code != 1 {
		t.Fatalf("check exited %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want the config line and one line per enabled backend, got:\n%s", out)
	}
	if !strings.HasPrefix(lines[1], "mem: ok: version ") {
		t.Errorf("the backend that starts: %q", lines[1])
	}
	if !strings.HasPrefix(lines[2], "broken: FAILED: ") || !strings.Contains(lines[2], "the engine is on fire") {
		t.Errorf("the backend that fails to start: %q; want what it said", lines[2])
	}
	if !strings.HasPrefix(lines[3], "impostor: FAILED: ") || !strings.Contains(lines[3], notBackend) {
		t.Errorf("the binary that is no backend: %q", lines[3])
	}
}

// check beside a dispatcher running on the same config: it says that a running backend holds the data
// directory, checks on a scratch one, and leaves the running dispatcher and its backend as they were, still
// ready. health asks the running one and says it is healthy; with nothing listening it fails.
func TestCheckBesideRunningDispatcher(t *testing.T) {
	labtest.RequireDocker(t)
	dir := t.TempDir()
	disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
	bin := labtest.BuildBackend(t, "./cmd/backend-docker")
	sock := filepath.Join(dir, "d.sock")
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`
data_dir: %s
listen: {tcp: "", unix: %s}
routing: {default: docker}
backends:
  - name: docker
    binary: %s
`, filepath.Join(dir, "data"), sock, bin))

	// Nothing runs yet: health fails.
	if out, errOut, code := runCmd(t, disp, "health", "--config", cfgPath); code != 1 {
		t.Errorf("health with no dispatcher: exit %d\n%s%s", code, out, errOut)
	}

	cmd := exec.Command(disp, "--config", cfgPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	ready := func() bool {
		resp, err := client.Get("http://unix/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	for deadline := time.Now().Add(30 * time.Second); !ready(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the dispatcher was not ready within 30s\n%s", stderr.String())
		}
	}
	backendPID := findChild(t, cmd.Process.Pid, bin)

	out, errOut, code := runCmd(t, disp, "check", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("check beside a running dispatcher exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	want := fmt.Sprintf("a running dispatcher's backend (pid %d) holds its data directory", backendPID)
	if !strings.Contains(out, "docker: ok: version ") || !strings.Contains(out, want) {
		t.Errorf("check's line does not say it ran beside backend pid %d:\n%s", backendPID, out)
	}
	if err := syscall.Kill(backendPID, 0); err != nil {
		t.Errorf("the running backend (pid %d) is gone after the check: %v", backendPID, err)
	}
	if !ready() {
		t.Errorf("the running dispatcher is not ready after the check\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "backend exited") || strings.Contains(stderr.String(), "SIGTERM") {
		t.Errorf("the running dispatcher's backend was disturbed:\n%s", stderr.String())
	}
	if got := findChild(t, cmd.Process.Pid, bin); got != backendPID {
		t.Errorf("the running dispatcher's backend is now pid %d, was %d", got, backendPID)
	}

	out, errOut, code = runCmd(t, disp, "health", "--config", cfgPath)
	if code != 0 || !strings.HasPrefix(out, "healthy: ") {
		t.Errorf("health of the running dispatcher: exit %d\n%s%s", code, out, errOut)
	}
}
