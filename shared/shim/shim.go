package shim

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/subpath"
)

// ExitShimError is the exit code when the shim itself cannot run (no or a bad spec), like an engine's 125.
const ExitShimError = 125

// ExitKilled is the exit code when the shim stopped the command for a failed liveness or startup probe or
// postStart hook, whatever the command's own end: the kubelet reports such a kill as 137.
const ExitKilled = 137

// forwarded are the signals passed on to the command; SIGTERM goes through the stop sequence first.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// Main runs the shim: args holds the path of the spec file, whose directory is the state directory. It
// returns the exit code for the container.
//
// Two subcommands serve the job scripts of the SLURM backend on the compute node: "pin CONTAINER VOLUME ROOT
// SUBPATH TARGET PERM" binds a subPath, resolved beneath its volume ROOT now, onto TARGET (see package
// shared/subpath; PERM is the octal mode of a missing directory it creates), printing why it refused on
// stderr and exiting 1; "unpin-all DIR" undoes every pin below DIR.
func Main(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "pin":
			return pinMain(args[1:])
		case "unpin-all":
			return unpinAllMain(args[1:])
		}
	}
	if len(args) != 1 {
		logf("usage: interlink-shim SPEC_FILE (the backend sets this up; see package shared/shim)")
		return ExitShimError
	}
	st := &stateWriter{dir: filepath.Dir(args[0])}
	spec, err := ReadSpec(args[0])
	if err != nil {
		logf("%v", err)
		st.reset(false)
		st.reason(ReasonStartError, err.Error())
		st.exit(ExitShimError)
		return ExitShimError
	}
	return newSupervisor(spec, st).run()
}

// supervisor runs one container's command as its PID 1.
type supervisor struct {
	spec   Spec
	state  *stateWriter
	reaper *reaper
	runner *runner
	child  *proc

	// Only the goroutine of run changes these.
	killed   bool          // the shim decided to stop the command (probe or hook failure)
	stopping bool          // the stop sequence has begun
	stopDone chan struct{} // closed when the stop sequence is over
}

func newSupervisor(spec Spec, st *stateWriter) *supervisor {
	r := newReaper()
	return &supervisor{spec: spec, state: st, reaper: r, runner: &runner{reaper: r, dir: spec.WorkingDir, ports: spec.Ports}}
}

type killRequest struct {
	reason, message string
	grace           *int64
}

func (s *supervisor) run() int {
	// Before the command exists, so that no signal is lost or kills the shim with its default action.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwarded...)
	// A closed log pipe must not kill PID 1 through one of its own lines. Notify rather than Ignore, because
	// an ignored signal would stay ignored in the command.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	s.state.reset(s.spec.GatesReadiness())
	if s.spec.RunAsNonRoot && os.Getuid() == 0 {
		// The kubelet's words; it never creates such a container.
		msg := "container has runAsNonRoot and image will run as root"
		logf("%s", msg)
		s.state.reason(ReasonCreateContainerConfigError, msg)
		s.state.exit(ExitShimError)
		return ExitShimError
	}

	cmd := &exec.Cmd{Args: s.spec.Argv, Dir: s.spec.WorkingDir, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	path, err := lookCommand(s.spec.Argv[0], s.spec.WorkingDir)
	if err == nil {
		cmd.Path = path
		s.child, err = s.reaper.start(cmd, false)
	}
	if err != nil {
		code := errorCode(err)
		logf("%v", err)
		s.state.reason(ReasonStartError, err.Error())
		s.state.exit(code)
		return code
	}
	started := time.Now()
	s.state.started(started)

	kills := make(chan killRequest, 4)
	requestKill := func(k killRequest) {
		select {
		case kills <- k:
		default: // one is being carried out already
		}
	}
	var postStart chan error
	hookCtx, stopHook := context.WithCancel(context.Background())
	defer stopHook()
	if h := s.lifecycle().PostStart; h != nil {
		postStart = make(chan error, 1)
		go func() { postStart <- s.runner.hook(hookCtx, h) }()
	}
	ctx, stopProbes := context.WithCancel(context.Background())
	ps := &probes{run: s.runner, state: s.state, started: started, kill: func(msg string, grace *int64) {
		requestKill(killRequest{ReasonUnhealthy, msg, grace})
	}}
	ps.start(ctx, s.spec.StartupProbe, s.spec.LivenessProbe, s.spec.ReadinessProbe)

	for running := true; running; {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGTERM && !s.stopping {
				// A delete's own grace period, when the backend wrote one, else the pod's.
				grace := s.spec.TerminationGracePeriodSeconds
				if g := stopGrace(s.state.dir); g != nil {
					grace = g
				}
				s.stop(grace)
			} else {
				s.child.signal(sig.(syscall.Signal))
			}
		case err := <-postStart:
			postStart = nil
			if err != nil {
				requestKill(killRequest{ReasonFailedPostStartHook, "PostStart hook failed: " + err.Error(), nil})
			}
		case k := <-kills:
			// A container already being stopped is not killed again: its end is the stop's.
			if !s.stopping {
				s.kill(k)
			}
		case <-s.child.done:
			running = false
		}
	}
	stopProbes()
	ps.wait()
	return s.finish(postStart)
}

// finish does what follows the command's end: the rest of postStart, the stop sequence or preStop, the
// state, and returns the shim's exit code.
func (s *supervisor) finish(postStart <-chan error) int {
	if s.spec.GatesReadiness() {
		s.state.ready(false)
	}
	code := exitCode(s.child.status)
	grace := seconds(s.spec.GracePeriodSeconds())
	if postStart != nil {
		// The hook may still be writing what the command's last lines report on; it gets the grace period.
		select {
		case err := <-postStart:
			if err != nil && !s.stopping {
				s.kill(killRequest{ReasonFailedPostStartHook, "PostStart hook failed: " + err.Error(), nil})
			}
		case <-time.After(grace):
		}
	}
	if s.stopping {
		<-s.stopDone
	} else if h := s.lifecycle().PreStop; h != nil && s.spec.PreStopOnExit {
		s.preStop(h, time.Now().Add(grace))
	}
	if s.killed {
		code = ExitKilled
	}
	killDescendants()
	s.state.exit(code)
	return code
}

func (s *supervisor) lifecycle() *v1.Lifecycle {
	if s.spec.Lifecycle == nil {
		return &v1.Lifecycle{}
	}
	return s.spec.Lifecycle
}

// kill records why the shim stops the command and stops it.
func (s *supervisor) kill(k killRequest) {
	s.killed = true
	logf("%s; stopping the container", k.message)
	s.state.reason(k.reason, k.message)
	grace := s.spec.TerminationGracePeriodSeconds
	if k.grace != nil {
		grace = k.grace
	}
	s.stop(grace)
}

// stop starts the stop sequence in the background: preStop, the stop signal, and SIGKILL when the grace
// period is over (at least 2 s after the signal, as the kubelet grants). stopDone closes when it is over.
func (s *supervisor) stop(graceSeconds *int64) {
	s.stopping = true
	s.stopDone = make(chan struct{})
	grace := seconds(Spec{TerminationGracePeriodSeconds: graceSeconds}.GracePeriodSeconds())
	deadline := time.Now().Add(grace)
	sig := syscall.SIGTERM
	if name := s.lifecycle().StopSignal; name != nil {
		sig, _ = parseSignal(string(*name)) // Validate has accepted it
	}
	go func() {
		defer close(s.stopDone)
		if h := s.lifecycle().PreStop; h != nil {
			s.preStop(h, deadline)
		}
		s.child.signal(sig)
		t := time.NewTimer(max(time.Until(deadline), minGracePeriodSeconds*time.Second))
		defer t.Stop()
		select {
		case <-s.child.done:
		case <-t.C:
			s.child.signal(syscall.SIGKILL)
		}
	}()
}

// preStop runs the preStop hook until deadline. Its failure is only reported, as the kubelet does.
func (s *supervisor) preStop(h *v1.LifecycleHandler, deadline time.Time) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := s.runner.hook(ctx, h); err != nil {
		logf("PreStop hook failed: %v", err)
	} else if ctx.Err() != nil {
		logf("PreStop hook did not finish within the grace period")
	}
}

// logf writes one line of the shim's own to the container log (stderr).
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "interlink-shim: "+format+"\n", args...)
}

func pinMain(args []string) int {
	if len(args) != 6 {
		logf("usage: interlink-shim pin CONTAINER VOLUME ROOT SUBPATH TARGET PERM")
		return ExitShimError
	}
	perm, err := strconv.ParseUint(args[5], 8, 32)
	if err != nil {
		logf("pin: mode %q is not an octal number", args[5])
		return ExitShimError
	}
	if err := subpath.Pin(args[2], args[3], args[4], fs.FileMode(perm)); err != nil {
		// The whole line is the container's status message.
		fmt.Fprintf(os.Stderr, "container %q, volume %q: %v\n", args[0], args[1], err)
		return 1
	}
	return 0
}

func unpinAllMain(args []string) int {
	if len(args) != 1 {
		logf("usage: interlink-shim unpin-all DIR")
		return ExitShimError
	}
	if err := subpath.UnpinAll(args[0]); err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}
