package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// runPodCommand is the first argument that makes this binary a pod's runner.
const runPodCommand = "run-pod"

// state is a container's c-<name>.state: written when it starts and again when it ends.
type state struct {
	PID        int       `json:"pid,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	ExitCode   int32     `json:"exit_code"`
	// NotStarted says why a container never ran (an init container failed first).
	NotStarted string `json:"not_started,omitempty"`
}

func statePath(dir, name string) string { return filepath.Join(dir, "c-"+name+".state") }
func logPath(dir, name string) string   { return filepath.Join(dir, "c-"+name+".log") }

func readState(dir, name string) (state, error) {
	var s state
	data, err := os.ReadFile(statePath(dir, name))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(data, &s)
}

// runPod is the runner of the pod in dir: it runs the init containers one after the other, stopping at the
// first that fails, then the containers side by side, and records each one's start, end and log. It is the
// leader of the pod's process group: Delete's SIGTERM reaches it and every container at once, and it then
// starts nothing more.
func runPod(dir string) error {
	rec, err := readRecord(dir)
	if err != nil {
		return err
	}
	var stopping atomic.Bool
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-terms
		stopping.Store(true)
	}()
	for i, c := range rec.Plan.Init {
		code := runContainer(dir, c)
		if code == 0 && !stopping.Load() {
			continue
		}
		why := fmt.Sprintf("init container %s failed with exit code %d", c.Name, code)
		if stopping.Load() {
			why = "the pod was deleted before it started"
		}
		now := time.Now().UTC()
		for _, rest := range append(append([]proc{}, rec.Plan.Init[i+1:]...), rec.Plan.Containers...) {
			if err := writeJSONFile(statePath(dir, rest.Name), state{FinishedAt: now, NotStarted: why}); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	for _, c := range rec.Plan.Containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runContainer(dir, c)
		}()
	}
	wg.Wait()
	return nil
}

// runContainer runs one container to its end and returns its exit code (128+signal when a signal ended it,
// 127 when it could not start). Its stdout and stderr go to its log, line by line, in the CRI log format.
func runContainer(dir string, c proc) int32 {
	logf, err := os.OpenFile(logPath(dir, c.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return finish(dir, c.Name, state{StartedAt: time.Now().UTC()}, 127, fmt.Errorf("cannot open its log: %w", err))
	}
	defer logf.Close()
	lw := &criWriter{w: logf}
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	cmd.Stdout, cmd.Stderr = outW, errW
	var copies sync.WaitGroup
	copies.Add(2)
	go func() { defer copies.Done(); lw.copy("stdout", outR) }()
	go func() { defer copies.Done(); lw.copy("stderr", errR) }()
	s := state{StartedAt: time.Now().UTC()}
	startErr := cmd.Start()
	if startErr == nil {
		s.PID = cmd.Process.Pid
		_ = writeJSONFile(statePath(dir, c.Name), s)
	}
	var runErr error
	if startErr == nil {
		runErr = cmd.Wait()
	}
	outW.Close()
	errW.Close()
	copies.Wait()
	if startErr != nil {
		lw.line("stderr", []byte(fmt.Sprintf("cannot start %s: %v\n", c.Argv[0], startErr)))
		return finish(dir, c.Name, s, 127, nil)
	}
	code := int32(0)
	var exit *exec.ExitError
	if errors.As(runErr, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int32(ws.Signal())
		} else {
			code = int32(exit.ExitCode())
		}
	}
	return finish(dir, c.Name, s, code, nil)
}

// finish records a container's end.
func finish(dir, name string, s state, code int32, why error) int32 {
	if why != nil {
		fmt.Fprintf(os.Stderr, "container %s: %v\n", name, why)
	}
	s.FinishedAt, s.ExitCode = time.Now().UTC(), code
	if err := writeJSONFile(statePath(dir, name), s); err != nil {
		fmt.Fprintf(os.Stderr, "container %s: cannot record its end: %v\n", name, err)
	}
	return code
}

// criWriter writes log lines as the CRI log format does: "<RFC3339Nano time> <stream> <F|P> <text>", F for
// a whole line, P for a part of one (a long line, or the end of an output without a newline).
type criWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (c *criWriter) copy(stream string, r io.Reader) {
	br := bufio.NewReaderSize(r, 16*1024)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			c.line(stream, line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			io.Copy(io.Discard, r)
			return
		}
	}
}

func (c *criWriter) line(stream string, b []byte) {
	tag, text := "P", b
	if b[len(b)-1] == '\n' {
		tag, text = "F", b[:len(b)-1]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "%s %s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), stream, tag, text)
}
