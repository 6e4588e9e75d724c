package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
)

// EnvVar is the environment variable through which Launch hands a backend process its Env, as JSON.
const EnvVar = "INTERLINK_DISPATCHER_BACKEND_ENV"

// Serve is all a backend's main calls: it reads the backend's Env from EnvVar, builds the backend with f and
// serves it to the dispatcher over go-plugin until the dispatcher stops it; then, if the backend is an
// io.Closer, it closes it (within about two seconds, after which go-plugin kills the process), and the
// process exits. The ctx given to f lives as long as the backend is served.
//
// A backend never outlives its dispatcher: on SIGTERM (which Launch has the kernel send when the dispatcher
// dies, on Linux) or when its parent process changes (the dispatcher is gone, on any OS), it stops being
// served, cancels f's ctx, closes itself the same way and exits. And two processes of one backend never
// run at once on its data directory: before building the backend, Serve takes an exclusive lock on
// Env.DataDir, waiting for an earlier process that still holds it and, if that one does not let go, stopping
// it (see lockDataDir). Every backend gets both without code of its own.
//
// Serve makes slog's default logger write hclog JSON lines to stderr, which the dispatcher re-emits with
// their level, message and fields, tagged with the backend's name; a backend simply logs with slog. Serve
// never returns: when f fails it logs the error as one line and exits with status 1, which the dispatcher
// reports, or ExitBadConfig when the error says the backend's config is wrong (IsBadConfig).
func Serve(f Factory) {
	os.Exit(serve(f))
}

// parentPollInterval is how often a served backend checks that its parent is still the process that
// started it.
const parentPollInterval = 500 * time.Millisecond

// closeBound bounds a backend's Close, however it was stopped: when it stops on its own (its dispatcher
// gone) no go-plugin client is left to kill it.
const closeBound = 10 * time.Second

func serve(f Factory) int {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "%s is a backend of interlink-dispatcher: the dispatcher starts it for each "+
			"backend of its config that names this binary; it is not meant to be run by hand.\n",
			filepath.Base(os.Args[0]))
		return 1
	}
	// Taken first: the signal must not kill the process before the backend is closed.
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	// A dead dispatcher leaves stderr a broken pipe: a log line must then fail, not kill the process
	// before it has closed its backend.
	signal.Ignore(syscall.SIGPIPE)
	parent := os.Getppid()

	levelName := os.Getenv(levelEnv)
	slog.SetDefault(slog.New(newHclogJSONHandler(os.Stderr, levelFromName(levelName))))
	pluginLog := hclog.New(&hclog.LoggerOptions{
		Output:     os.Stderr,
		JSONFormat: true,
		Level:      hclog.LevelFromString(levelName),
	})

	env, err := envFromEnviron()
	if err != nil {
		slog.Error(err.Error())
		return 1
	}
	unlock, err := lockDataDir(env)
	if err != nil {
		slog.Error(fmt.Sprintf("the backend cannot start: %v", err))
		return 1
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := f(ctx, env)
	if err != nil {
		if IsBadConfig(err) {
			// The sentence alone (it names every key at fault): the dispatcher puts it after
			// `backend "name" is misconfigured: ` in its log and in /readyz.
			slog.Error(err.Error())
			return ExitBadConfig
		}
		slog.Error(fmt.Sprintf("the backend cannot start: %v", err))
		return 1
	}
	if b == nil {
		slog.Error("the backend cannot start: its factory returned no backend")
		return 1
	}

	served := make(chan struct{})
	go func() {
		defer close(served)
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  Handshake,
			VersionedPlugins: pluginSets(b),
			GRPCServer:       newGRPCServer,
			Logger:           pluginLog,
		})
	}()

	select {
	case <-served: // the dispatcher stopped it
	case <-terms:
		why := "it received SIGTERM"
		if os.Getppid() != parent {
			why = fmt.Sprintf("its dispatcher (pid %d) is gone", parent)
		}
		slog.Warn(fmt.Sprintf("backend %q is stopping: %s; its pods keep running", env.Name, why))
	case <-parentGone(parent):
		slog.Warn(fmt.Sprintf("backend %q is stopping: its dispatcher (pid %d) is gone; its pods keep running", env.Name, parent))
	}

	cancel()
	c, ok := b.(io.Closer)
	if !ok {
		return 0
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	// Bounded either way: after a stop the dispatcher asked for, go-plugin kills the process two seconds
	// later, but a dispatcher that dies within those two seconds kills nothing, and its parent-death signal
	// is caught by now (terms), so a Close hung on its engine would keep the backend alive for good.
	bound := time.NewTimer(closeBound)
	defer bound.Stop()
	select {
	case err := <-closed:
		if err != nil {
			slog.Error(fmt.Sprintf("backend %q did not close cleanly: %v", env.Name, err))
			return 1
		}
		return 0
	case <-bound.C:
		slog.Error(fmt.Sprintf("backend %q did not close within %s; exiting anyway", env.Name, closeBound))
		return 1
	}
}

// IsBadConfig reports whether err, or an error it wraps, says the backend's config is wrong: it has a
// method BadConfig() bool that returns true, as shared/settings.Problems have.
func IsBadConfig(err error) bool {
	var bc interface{ BadConfig() bool }
	return errors.As(err, &bc) && bc.BadConfig()
}

// parentGone is closed when the process's parent is no longer parent: an orphan is re-parented (to init or
// a subreaper), so a changed parent id means the dispatcher that started it has died.
func parentGone(parent int) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		t := time.NewTicker(parentPollInterval)
		defer t.Stop()
		for range t.C {
			if os.Getppid() != parent {
				close(gone)
				return
			}
		}
	}()
	return gone
}

func envFromEnviron() (Env, error) {
	raw, ok := os.LookupEnv(EnvVar)
	if !ok {
		return Env{}, fmt.Errorf("the environment variable %s is not set: the dispatcher sets it when it "+
			"starts a backend; start this binary through the dispatcher", EnvVar)
	}
	var env Env
	if err := json.Unmarshal([]byte(raw), &env); err != nil {
		return Env{}, fmt.Errorf("the environment variable %s is not the JSON of a backend Env: %v", EnvVar, err)
	}
	if len(env.Config) == 0 {
		env.Config = json.RawMessage("{}")
	}
	return env, nil
}
