package shim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Exit codes of a command that could not be started, as a POSIX shell uses them.
const (
	ExitNotFound      = 127
	ExitNotExecutable = 126
)

// defaultPath is what engines put in PATH when the image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// startError is a command that could not be started, with the shell's exit code for it.
type startError struct {
	code int
	msg  string
}

func (e *startError) Error() string { return e.msg }

// lookCommand finds the executable for name the way execvp does: a name with a slash is used as it is
// (relative to dir), any other is searched on PATH. Files that exist but cannot be executed give 126.
func lookCommand(name, dir string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if dir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			return "", err
		}
		return name, nil
	}
	path, ok := os.LookupEnv("PATH")
	if !ok {
		path = defaultPath
	}
	var denied error
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, name)
		switch err := executable(p); {
		case err == nil:
			return p, nil
		case denied == nil && errorCode(err) == ExitNotExecutable:
			denied = err
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", &startError{ExitNotFound, fmt.Sprintf("exec: %q: executable file not found in $PATH", name)}
}

func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &startError{ExitNotFound, fmt.Sprintf("exec: %q: no such file or directory", p)}
	case err != nil:
		return &startError{ExitNotExecutable, fmt.Sprintf("exec: %q: %v", p, errors.Unwrap(err))}
	case fi.IsDir():
		return &startError{ExitNotExecutable, fmt.Sprintf("exec: %q: is a directory", p)}
	case fi.Mode()&0o111 == 0:
		return &startError{ExitNotExecutable, fmt.Sprintf("exec: %q: permission denied", p)}
	}
	return nil
}

func errorCode(err error) int {
	var se *startError
	if errors.As(err, &se) {
		return se.code
	}
	return ExitNotExecutable
}

// reaper starts the shim's processes and reaps every child, its own and the orphans the kernel hands to a
// PID 1 (or a subreaper). Go's own Wait cannot be used beside a wait4(-1) loop, so each started process gets
// its status from here; starting under the same lock as reaping keeps a fast exit from being reaped before
// its waiter is registered.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]*proc
}

// proc is a process started through the reaper.
type proc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	status syscall.WaitStatus
	group  bool
}

func newReaper() *reaper {
	r := &reaper{waiters: map[int]*proc{}}
	if os.Getpid() != 1 {
		// Outside a container (tests, SLURM without an engine) orphans would go elsewhere; take them so that
		// the shim behaves as it does as PID 1.
		const prSetChildSubreaper = 36
		syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	}
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	go func() {
		for range sigchld {
			r.reap()
		}
	}()
	return r
}

func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		if p, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			p.status = ws
			close(p.done)
		}
	}
}

// start starts cmd (whose Path is already resolved). With group set the process leads its own process group,
// so that a timed-out hook or probe can be killed with everything it spawned.
func (r *reaper) start(cmd *exec.Cmd, group bool) (*proc, error) {
	if group {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		code := ExitNotExecutable
		if errors.Is(err, fs.ErrNotExist) {
			code = ExitNotFound
		}
		return nil, &startError{code, fmt.Sprintf("exec: %q: %v", cmd.Path, unwrapPathError(err))}
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), group: group}
	r.waiters[cmd.Process.Pid] = p
	return p, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// signal sends sig to the process (and its group when it leads one) unless it has been reaped already.
func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	if p.group {
		syscall.Kill(-p.cmd.Process.Pid, sig)
		return
	}
	p.cmd.Process.Signal(sig)
}

// wait waits for the process to end or ctx to be done; on ctx it kills the process and waits for that.
func (p *proc) wait(ctx context.Context) (syscall.WaitStatus, error) {
	select {
	case <-p.done:
		return p.status, nil
	case <-ctx.Done():
		p.signal(syscall.SIGKILL)
		<-p.done
		return p.status, ctx.Err()
	}
}

// exitCode turns a wait status into a shell's exit code: the code, or 128+signal.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// killDescendants kills every process left below the shim when it ends. As a container's PID 1 the kernel
// does that anyway; elsewhere (tests, a backend without an engine) it keeps the same rule: the container
// ends with its first process, and nothing it started lingers holding the log open.
func killDescendants() {
	if os.Getpid() == 1 {
		return
	}
	seen := map[int]bool{}
	var walk func(pid int)
	walk = func(pid int) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range tasks {
			data, _ := os.ReadFile(f)
			for _, field := range strings.Fields(string(data)) {
				child, err := strconv.Atoi(field)
				if err != nil || seen[child] {
					continue
				}
				seen[child] = true
				// Stopped first, so that it cannot fork between being listed and being killed.
				syscall.Kill(child, syscall.SIGSTOP)
				walk(child)
			}
		}
	}
	walk(os.Getpid())
	for pid := range seen {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
