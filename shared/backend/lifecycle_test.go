package backend_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// helperEnv makes the test binary a helper process standing for a dispatcher: it starts the test backend
// named by helperBackendEnv, prints the backend's pid, and waits to be killed. Its value says how it starts
// it: "launch" through backend.Launch, "exec" as a plain child (so that no parent-death signal is set and
// only the backend's own watch of its parent can notice the helper's death).
const (
	helperEnv        = "BACKEND_TEST_HELPER"
	helperBackendEnv = "BACKEND_TEST_HELPER_BACKEND"
)

func runHelper(mode string) int {
	bin := os.Getenv(helperBackendEnv)
	switch mode {
	case "launch":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p, err := backend.Launch(ctx, backend.LaunchConfig{Name: "mem", Path: bin,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(p.PID())
	case "exec":
		env, _ := json.Marshal(backend.Env{Name: "mem", Config: json.RawMessage("{}")})
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), backend.Handshake.MagicCookieKey+"="+backend.Handshake.MagicCookieValue,
			backend.EnvVar+"="+string(env))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// The handshake line: the backend is served.
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "no handshake:", err)
			return 1
		}
		fmt.Println(cmd.Process.Pid)
	default:
		return 2
	}
	time.Sleep(time.Hour)
	return 0
}

// gone tells whether pid has exited: no such process, or a zombie nobody has reaped yet.
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: comm may hold spaces, the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func waitGone(pid int, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if gone(pid) {
			return true
		}
	}
	return gone(pid)
}

// A backend whose dispatcher is SIGKILLed exits within seconds: through the parent-death signal Launch
// sets, and, for a backend started without it, through its own watch of its parent.
func TestBackendDiesWithItsDispatcher(t *testing.T) {
	bin := buildTestBackend(t)
	for _, mode := range []string{"launch", "exec"} {
		t.Run(mode, func(t *testing.T) {
			helper := exec.Command(os.Args[0], "-test.run=^$")
			helper.Env = append(os.Environ(), helperEnv+"="+mode, helperBackendEnv+"="+bin)
			// A file, not a pipe: the backend inherits it, and a pipe would keep helper.Wait waiting for it.
			stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			defer stderr.Close()
			helper.Stderr = stderr
			said := func() string { b, _ := os.ReadFile(stderr.Name()); return string(b) }
			out, err := helper.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := helper.Start(); err != nil {
				t.Fatal(err)
			}
			defer helper.Process.Kill()
			line, err := bufio.NewReader(out).ReadString('\n')
			pid, perr := strconv.Atoi(strings.TrimSpace(line))
			if err != nil || perr != nil {
				helper.Process.Kill()
				helper.Wait()
				t.Fatalf("the helper did not start a backend: %q %v\n%s", line, err, said())
			}
			defer syscall.Kill(pid, syscall.SIGKILL)
			// Alive while its dispatcher is.
			time.Sleep(time.Second)
			if gone(pid) {
				t.Fatalf("the backend %d exited while its dispatcher runs\n%s", pid, said())
			}
			if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			helper.Wait()
			if !waitGone(pid, 5*time.Second) {
				t.Fatalf("the backend %d still runs 5 s after its dispatcher was SIGKILLed", pid)
			}
			// Under Launch the backend's stderr went to the dead helper; started plainly, it shares the helper's.
			if mode == "exec" && !strings.Contains(said(), `backend \"mem\" is stopping: its dispatcher (pid `) {
				t.Errorf("the backend did not say why it stopped:\n%s", said())
			}
		})
	}
}

// A second backend process on the same data directory never runs beside the first: it waits for it, and
// stops it (SIGTERM) when it does not let go, saying so; the first closes cleanly and its Done is closed.
func TestSecondBackendStopsTheFirst(t *testing.T) {
	dir := t.TempDir()
	env := backend.Env{Instance: "i1", DataDir: dir}
	first := launch(t, backend.LaunchConfig{Env: env})
	if b, err := os.ReadFile(filepath.Join(dir, backend.LockFile)); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(first.PID()) {
		t.Fatalf("lock file after the first start: %q %v; want the pid %d", b, err, first.PID())
	}
	rec := newRecorder()
	start := time.Now()
	second := launch(t, backend.LaunchConfig{Env: env, Logger: slog.New(rec)})
	took := time.Since(start)
	// The first lets go of the lock on its way out, after closing its backend; Done follows once the
	// process is reaped and seen gone (polled every 100 ms).
	select {
	case <-first.Done():
	case <-time.After(2 * time.Second):
		t.Fatalf("the second backend (pid %d) started while the first (pid %d) still runs", second.PID(), first.PID())
	}
	if took < 4*time.Second {
		t.Errorf("the second backend started after %s: it did not wait for the first to let go", took)
	}
	rec.find(t, fmt.Sprintf("data directory %s is held by another process of backend %q (pid %d); waiting up to 5s for it to exit", dir, "mem", first.PID()))
	rec.find(t, fmt.Sprintf("stopping the earlier process of backend %q (pid %d) that still holds data directory %s: sending it SIGTERM", "mem", first.PID(), dir))
	if _, err := second.Capacity(context.Background()); err != nil {
		t.Fatalf("the second backend does not serve: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, backend.LockFile)); strings.TrimSpace(string(b)) != strconv.Itoa(second.PID()) {
		t.Errorf("lock file after the second start: %q; want the pid %d", b, second.PID())
	}
}

// A data directory locked by something that is not this backend is never signalled: the start fails
// naming the holder.
func TestDataDirLockedByAnotherProgram(t *testing.T) {
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, backend.LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := backend.Launch(ctx, backend.LaunchConfig{Name: "mem", Path: buildTestBackend(t), Env: backend.Env{DataDir: dir},
		Logger: slog.New(newRecorder())})
	if err == nil {
		p.Stop()
		t.Fatal("the backend started on a data directory another program holds")
	}
	want := fmt.Sprintf("its data directory %s is locked (%s) by pid %d, which runs", dir, filepath.Join(dir, backend.LockFile), os.Getpid())
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "not this backend's binary testbackend") {
		t.Fatalf("error = %v; want it to contain %q", err, want)
	}
}

// A Create error the backend answered (its own refusal) is told from a call that broke with the process
// dying before it answered: only the latter carries ErrNoAnswer.
func TestCreateErrorTellsLostAnswer(t *testing.T) {
	p := launch(t, backend.LaunchConfig{Env: backend.Env{DataDir: t.TempDir(), Config: json.RawMessage(`{"persist": true}`)}})
	ctx := context.Background()
	_, err := p.Create(ctx, backend.CreateRequest{Pod: testPod("uid-refused", map[string]string{"test.interlink.eu/error": "unavailable"})})
	if backend.KindOf(err) != backend.KindUnavailable || errors.Is(err, backend.ErrNoAnswer) {
		t.Fatalf("the backend's own unavailable answer: kind %v, no answer %v, %v", backend.KindOf(err), errors.Is(err, backend.ErrNoAnswer), err)
	}
	_, err = p.Create(ctx, backend.CreateRequest{Pod: testPod("uid-lost", map[string]string{"test.interlink.eu/exit-after-create": "once"})})
	if backend.KindOf(err) != backend.KindUnavailable || !errors.Is(err, backend.ErrNoAnswer) {
		t.Fatalf("a create whose backend died before answering: kind %v, no answer %v, %v", backend.KindOf(err), errors.Is(err, backend.ErrNoAnswer), err)
	}
}
