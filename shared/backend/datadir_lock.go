package backend

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LockFile is the file in a backend's Env.DataDir that the running backend process holds an exclusive
// flock on, and in which it writes its pid.
const LockFile = "backend.lock"

// The bounds of lockDataDir's wait for an earlier process: a backend whose dispatcher died stops by
// itself within a second or two; one that does not is asked to (SIGTERM), then killed.
var (
	lockWait = 5 * time.Second
	termWait = 10 * time.Second
	killWait = 5 * time.Second
)

// lockDataDir takes the exclusive lock of env.DataDir, so that a new backend process never works on the
// same pods as an old one still running (one whose dispatcher died, say): two would both re-create and
// delete the same containers. An earlier holder is waited for; if it keeps the lock it is stopped, SIGTERM
// then SIGKILL, but only when it is this backend's binary serving a backend of the same name; anything else
// holding the lock fails the start with a sentence naming it. The lock lives as long as the returned
// release is not called (and ends with the process in any case). No DataDir: nothing to lock.
func lockDataDir(env Env) (release func(), err error) {
	if env.DataDir == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(env.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create its data directory %s: %v", env.DataDir, err)
	}
	path := filepath.Join(env.DataDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open its lock file %s: %v", path, err)
	}
	if err := takeLock(f, env, path); err != nil {
		f.Close()
		return nil, err
	}
	// The pid tells the next process whom to wait for; the lock itself is what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

func takeLock(f *os.File, env Env, path string) error {
	if tryLock(f) {
		return nil
	}
	holder := lockHolder(f)
	slog.Warn(fmt.Sprintf("data directory %s is held by another process of backend %q (pid %s); waiting up to %s for it to exit",
		env.DataDir, env.Name, pidText(holder), lockWait))
	if waitLock(f, lockWait) {
		slog.Info(fmt.Sprintf("the earlier process (pid %s) released data directory %s", pidText(holder), env.DataDir))
		return nil
	}
	holder = lockHolder(f) // it may have changed meanwhile
	if why := notOurBackend(holder, env.Name); why != "" {
		return fmt.Errorf("its data directory %s is locked (%s) by pid %s, which %s; stop that process or give this backend another data directory",
			env.DataDir, path, pidText(holder), why)
	}
	for _, step := range []struct {
		sig  syscall.Signal
		name string
		wait time.Duration
	}{{syscall.SIGTERM, "SIGTERM", termWait}, {syscall.SIGKILL, "SIGKILL", killWait}} {
		slog.Warn(fmt.Sprintf("stopping the earlier process of backend %q (pid %d) that still holds data directory %s: sending it %s",
			env.Name, holder, env.DataDir, step.name))
		if err := syscall.Kill(holder, step.sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("cannot stop pid %d, which holds its data directory %s: %v", holder, env.DataDir, err)
		}
		if waitLock(f, step.wait) {
			slog.Info(fmt.Sprintf("the earlier process (pid %d) is stopped; data directory %s is this process's", holder, env.DataDir))
			return nil
		}
	}
	return fmt.Errorf("its data directory %s is still locked by pid %d after SIGTERM and SIGKILL", env.DataDir, holder)
}

func tryLock(f *os.File) bool {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}

func waitLock(f *os.File, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; {
		if tryLock(f) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockHolder is the pid written in the lock file, 0 when there is none.
func lockHolder(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

func pidText(pid int) string {
	if pid == 0 {
		return "unknown"
	}
	return strconv.Itoa(pid)
}

// notOurBackend says why pid must not be stopped, or "" when it runs the same binary as this process and
// serves a backend named name (as its environment says).
func notOurBackend(pid int, name string) string {
	if pid == 0 || pid == os.Getpid() {
		return "did not write its pid in the lock file"
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return fmt.Sprintf("cannot be told to be a backend (%v)", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Sprintf("cannot be compared with this binary (%v)", err)
	}
	// A binary replaced since that process started shows as "<path> (deleted)".
	if filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != filepath.Base(self) {
		return fmt.Sprintf("runs %s, not this backend's binary %s", exe, filepath.Base(self))
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return fmt.Sprintf("cannot be told to be a backend (%v)", err)
	}
	for _, kv := range bytes.Split(environ, []byte{0}) {
		raw, ok := bytes.CutPrefix(kv, []byte(EnvVar+"="))
		if !ok {
			continue
		}
		var other Env
		if err := json.Unmarshal(raw, &other); err != nil {
			return "has no readable backend environment"
		}
		if other.Name != name {
			return fmt.Sprintf("serves backend %q, not %q", other.Name, name)
		}
		return ""
	}
	return "was not started as a backend by a dispatcher"
}

// DataDirHolder tells whether a running process holds the lock of the backend data directory dir, and its
// pid (0 when it wrote none), without creating anything or taking the lock for more than an instant: so
// that `interlink-dispatcher check` can say a dispatcher runs on the same data directory without
// disturbing it. A directory without a lock file has no holder.
func DataDirHolder(dir string) (pid int, held bool, err error) {
	f, err := os.Open(filepath.Join(dir, LockFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	// A shared lock is refused while a backend holds its exclusive one, and never blocks it for longer
	// than this call: a backend taking the lock meanwhile retries (see waitLock).
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return lockHolder(f), true, nil
		}
		return 0, false, err
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return 0, false, nil
}
