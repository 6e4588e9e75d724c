package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// commandLine is one configured SLURM command with the prefix it may carry ("sbatch", "/opt/slurm/bin/squeue",
// "sudo -u alice sbatch", "ssh login01 scancel"), already split shell-wise. Arguments are appended as separate
// words and the program is executed directly: no shell ever reads pod data.
type commandLine []string

func parseCommandLine(key, s string) (commandLine, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s: the command line is empty", key)
	}
	return commandLine(words), nil
}

// String renders the command line as a shell would read it, for messages.
func (c commandLine) String() string { return shellJoin(c) }

// commandResult is what one run of a command gave.
type commandResult struct {
	Stdout, Stderr []byte
	Duration       time.Duration
}

// run runs the command with args appended, in dir when it is not empty, and returns its output. A non-zero
// exit is an error whose message carries the command's own stderr (SLURM's message), trimmed.
func (c commandLine) run(ctx context.Context, dir string, args ...string) (commandResult, error) {
	argv := append(append([]string{}, c[1:]...), args...)
	cmd := exec.CommandContext(ctx, c[0], argv...)
	cmd.Dir = dir
	cmd.Env = commandEnv()
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := commandResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Duration: time.Since(start)}
	if err == nil {
		return res, nil
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = strings.TrimSpace(stdout.String())
	}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s did not finish in time: %w", c[0], ctx.Err())
	case errors.As(err, &exitErr) && msg != "":
		return res, &commandError{cmd: c.String(), msg: msg, code: exitErr.ExitCode()}
	case errors.As(err, &exitErr):
		return res, &commandError{cmd: c.String(), msg: exitErr.Error(), code: exitErr.ExitCode()}
	default:
		return res, &commandError{cmd: c.String(), msg: err.Error(), code: -1, notRun: true}
	}
}

// commandError is a SLURM command that failed, with its own message.
type commandError struct {
	cmd    string
	msg    string
	code   int
	notRun bool // the program could not be started at all
}

func (e *commandError) Error() string {
	if e.notRun {
		return fmt.Sprintf("cannot run %s: %s", e.cmd, e.msg)
	}
	return fmt.Sprintf("%s failed: %s", e.cmd, e.msg)
}

// unreachable reports whether a failed SLURM command says the controller could not be reached, which is a
// temporary unavailability rather than a refusal of what was asked.
func unreachable(err error) bool {
	var ce *commandError
	if !errors.As(err, &ce) {
		return false
	}
	if ce.notRun {
		return true
	}
	m := strings.ToLower(ce.msg)
	for _, s := range []string{"unable to contact slurm controller", "socket timed out", "connection refused",
		"communication connection failure", "slurm_load_jobs error: slurm backup controller in standby",
		"zero bytes were transmitted", "could not establish a configuration source", "unable to establish"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// commandEnv is the backend's environment without what the dispatcher handed the backend process (its
// config, the plugin handshake): sbatch exports its environment into the job by default, and jobs have no
// business with those.
func commandEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "INTERLINK_DISPATCHER_") || strings.HasPrefix(kv, "PLUGIN_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
