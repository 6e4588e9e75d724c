package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
)

// hook runs a lifecycle handler. Exec output goes to the container log, as the test set expects of
// preStop (the kubelet would discard it).
func (r *runner) hook(ctx context.Context, h *v1.LifecycleHandler) error {
	switch {
	case h.Exec != nil:
		code, _, err := r.exec(ctx, h.Exec.Command, os.Stdout, os.Stderr)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("command %q exited with code %d", strings.Join(h.Exec.Command, " "), code)
		}
		return nil
	case h.HTTPGet != nil:
		if ok, msg := r.httpGet(ctx, h.HTTPGet); !ok {
			return errors.New(msg)
		}
		return nil
	case h.Sleep != nil:
		t := time.NewTimer(seconds(h.Sleep.Seconds))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return nil
	}
	return errors.New("the hook has no action the shim can run")
}

// signalNames are the names Kubernetes uses for lifecycle.stopSignal.
var signalNames = map[string]syscall.Signal{
	"SIGABRT": syscall.SIGABRT, "SIGALRM": syscall.SIGALRM, "SIGBUS": syscall.SIGBUS, "SIGCHLD": syscall.SIGCHLD,
	"SIGCONT": syscall.SIGCONT, "SIGFPE": syscall.SIGFPE, "SIGHUP": syscall.SIGHUP, "SIGILL": syscall.SIGILL,
	"SIGINT": syscall.SIGINT, "SIGIO": syscall.SIGIO, "SIGKILL": syscall.SIGKILL, "SIGPIPE": syscall.SIGPIPE,
	"SIGPROF": syscall.SIGPROF, "SIGPWR": syscall.SIGPWR, "SIGQUIT": syscall.SIGQUIT, "SIGSEGV": syscall.SIGSEGV,
	"SIGSTKFLT": syscall.SIGSTKFLT, "SIGSTOP": syscall.SIGSTOP, "SIGSYS": syscall.SIGSYS, "SIGTERM": syscall.SIGTERM,
	"SIGTRAP": syscall.SIGTRAP, "SIGTSTP": syscall.SIGTSTP, "SIGTTIN": syscall.SIGTTIN, "SIGTTOU": syscall.SIGTTOU,
	"SIGURG": syscall.SIGURG, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2, "SIGVTALRM": syscall.SIGVTALRM,
	"SIGWINCH": syscall.SIGWINCH, "SIGXCPU": syscall.SIGXCPU, "SIGXFSZ": syscall.SIGXFSZ,
}

func parseSignal(name string) (syscall.Signal, error) {
	if sig, ok := signalNames[strings.ToUpper(name)]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("%q is not a signal name such as SIGTERM", name)
}
