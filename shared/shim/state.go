package shim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
)

// Names of the state files the shim keeps in its state directory.
const (
	ReadyFile   = "ready"
	StartedFile = "started"
	StartupFile = "startup" // "true" once the startup probe has succeeded
	ExitFile    = "exit"
	ReasonFile  = "reason"
	MessageFile = "message"
	// StopGraceFile is written by the backend, not the shim: the grace period in seconds of the stop it is
	// about to make (WriteStopGrace).
	StopGraceFile = "stop-grace"
)

var stateFiles = []string{ReadyFile, StartedFile, StartupFile, ExitFile, ReasonFile, MessageFile, StopGraceFile}

// WriteStopGrace tells the shims of a pod the grace period of the stop a backend is about to make: a
// delete's own grace period (the API server's deletionGracePeriodSeconds, which kubectl delete
// --grace-period sets) instead of the pod's terminationGracePeriodSeconds, as the kubelet honours it. Every
// shim state directory under root (one holding a spec file, at any depth) gets StopGraceFile; the shim
// reads it when SIGTERM comes. A missing root is no error: no container was started.
func WriteStopGrace(root string, grace time.Duration) error {
	secs := strconv.FormatInt(int64(max(grace, 0).Round(time.Second)/time.Second), 10) + "\n"
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if _, err := os.Stat(filepath.Join(path, SpecFile)); err != nil {
			return nil
		}
		return writeFileAtomic(path, StopGraceFile, []byte(secs), 0o644)
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot give the shims the stop's grace period: %w", err)
	}
	return nil
}

// stopGrace reads the StopGraceFile of state directory dir: the grace period of the stop under way, or nil.
func stopGrace(dir string) *int64 {
	data, err := os.ReadFile(filepath.Join(dir, StopGraceFile))
	if err != nil {
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || n < 0 {
		return nil
	}
	return &n
}

// Reasons the shim writes into the reason file.
const (
	// ReasonStartError: the command could not be started (missing or not executable).
	ReasonStartError = "StartError"
	// ReasonUnhealthy: a liveness or startup probe failed past its threshold and the shim killed the command.
	ReasonUnhealthy = "Unhealthy"
	// ReasonFailedPostStartHook: the postStart hook failed and the shim killed the command.
	ReasonFailedPostStartHook = "FailedPostStartHook"
)

// State is what a backend learns from a container's state directory.
type State struct {
	// Ready is nil when no probe gates the container's readiness (Spec.GatesReadiness: then a running
	// container is ready), else the probes' current verdict.
	Ready *bool
	// StartedAt is when the shim started the command; zero before that.
	StartedAt time.Time
	// StartupSucceeded tells whether the startup probe has succeeded (Kubernetes' "started").
	StartupSucceeded bool
	// Exited tells whether the shim has finished; ExitCode and FinishedAt are then set. ExitCode is the
	// command's (128+signal when it was killed by one, 137 when the shim killed it for a failed probe or
	// hook, 126/127 when it could not be started).
	Exited     bool
	ExitCode   int
	FinishedAt time.Time
	// Reason and Message explain an exit the shim caused, such as Unhealthy / "Liveness probe failed: ...".
	Reason  string
	Message string
}

// ReadState reads the state files of a container's state directory dir (on the host). Files the shim has not
// written yet leave their fields zero; a missing directory is an error.
func ReadState(dir string) (State, error) {
	var st State
	if _, err := os.Stat(dir); err != nil {
		return st, fmt.Errorf("cannot read the shim state: %w", err)
	}
	read := func(name string) (string, bool, error) {
		data, err := readStateFile(filepath.Join(dir, name), maxStateFileBytes)
		if errors.Is(err, os.ErrNotExist) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("cannot read the shim state: %w", err)
		}
		return strings.TrimSpace(string(data)), true, nil
	}
	if v, ok, err := read(ReadyFile); err != nil {
		return st, err
	} else if ok {
		ready := v == "true"
		st.Ready = &ready
	}
	if v, ok, err := read(StartedFile); err != nil {
		return st, err
	} else if ok {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return st, fmt.Errorf("the shim state file %s holds %q, not a time: %w", filepath.Join(dir, StartedFile), v, err)
		}
		st.StartedAt = t
	}
	if v, _, err := read(StartupFile); err != nil {
		return st, err
	} else {
		st.StartupSucceeded = v == "true"
	}
	if v, ok, err := read(ExitFile); err != nil {
		return st, err
	} else if ok {
		code, finished, err := parseExit(v)
		if err != nil {
			return st, fmt.Errorf("the shim state file %s is malformed: %w", filepath.Join(dir, ExitFile), err)
		}
		st.Exited, st.ExitCode, st.FinishedAt = true, code, finished
	}
	var err error
	if st.Reason, _, err = read(ReasonFile); err != nil {
		return st, err
	}
	if st.Message, _, err = read(MessageFile); err != nil {
		return st, err
	}
	return st, nil
}

// OnRunning puts the shim's verdicts on cs, the status of running container c: ready as its probes say
// when a probe gates its readiness, and started only once its startup probe, if it has one, has succeeded.
func (st State) OnRunning(c *v1.Container, cs *v1.ContainerStatus) {
	if st.Ready != nil {
		cs.Ready = *st.Ready
	}
	if c.StartupProbe != nil {
		cs.Started = &st.StartupSucceeded
	}
}

// formatExit and parseExit define the exit file: "<code> <RFC3339Nano finish time>".
func formatExit(code int, finished time.Time) string {
	return strconv.Itoa(code) + " " + finished.UTC().Format(time.RFC3339Nano) + "\n"
}

func parseExit(v string) (int, time.Time, error) {
	codeText, timeText, ok := strings.Cut(v, " ")
	if !ok {
		return 0, time.Time{}, fmt.Errorf("%q is not \"<code> <time>\"", v)
	}
	code, err := strconv.Atoi(codeText)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("exit code %q is not a number", codeText)
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(timeText))
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("finish time %q is not RFC 3339", timeText)
	}
	return code, t, nil
}

// maxStateFileBytes bounds what the backend reads of one state file.
const maxStateFileBytes = 64 << 10

// readStateFile reads the last max bytes of the state file at path, on the host. The state directory is
// the container's to write: whatever it put at path, the read must stay there. A symbolic link (to a host
// file the container could never read) is refused rather than followed, a FIFO or device does not block
// or stream (opened non-blocking, then refused as not a regular file), and a huge file is read only at its
// end.
func readStateFile(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link, which the shim never writes", path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file, which the shim always writes", path)
	}
	if off := fi.Size() - max; off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, max))
}

// writeFileAtomic writes name in dir through a temporary file and a rename, so that a reader on the host
// never sees half a file.
func writeFileAtomic(dir, name string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", name, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %w", name, err)
	}
	return nil
}

// stateWriter is the shim's side of the state directory. A state write that fails is reported once on
// stderr and otherwise ignored: the command must go on even if the backend cannot watch it.
type stateWriter struct {
	dir    string
	warned bool
}

func (w *stateWriter) write(name, value string) {
	if err := writeFileAtomic(w.dir, name, []byte(value), 0o644); err != nil && !w.warned {
		w.warned = true
		logf("cannot keep the state for the backend in %s: %v", w.dir, err)
	}
}

// reset removes what a previous run of the same container (an engine restart) left. A container whose
// probes gate its readiness starts not ready, and its ready file is replaced rather than removed: a backend
// reading between a removal and the new write would find no ready file, which reads as "no probe, ready".
func (w *stateWriter) reset(gatesReadiness bool) {
	for _, f := range stateFiles {
		if f != ReadyFile || !gatesReadiness {
			os.Remove(filepath.Join(w.dir, f))
		}
	}
	// Bound at terminationMessagePath: emptied, not removed, so that the bind stays the same file.
	if err := os.Truncate(filepath.Join(w.dir, TerminationFile), 0); err != nil && !errors.Is(err, os.ErrNotExist) && !w.warned {
		w.warned = true
		logf("cannot empty the termination message file: %v", err)
	}
	if gatesReadiness {
		w.ready(false)
	}
}

func (w *stateWriter) started(t time.Time) {
	w.write(StartedFile, t.UTC().Format(time.RFC3339Nano)+"\n")
}
func (w *stateWriter) ready(ok bool)     { w.write(ReadyFile, strconv.FormatBool(ok)+"\n") }
func (w *stateWriter) startupSucceeded() { w.write(StartupFile, "true\n") }
func (w *stateWriter) exit(code int)     { w.write(ExitFile, formatExit(code, time.Now())) }

func (w *stateWriter) reason(reason, message string) {
	// The message first: a backend that sees the reason expects its message too.
	w.write(MessageFile, message+"\n")
	w.write(ReasonFile, reason+"\n")
}
