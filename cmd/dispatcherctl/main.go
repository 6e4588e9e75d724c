// Command dispatcherctl runs, watches, reads and deletes pods on an interlink-dispatcher without
// Kubernetes: it sends the dispatcher what interLink would, and reads its admin API for the rest.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/client"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
)

// version and commit are set at build time with -ldflags "-X main.version=... -X main.commit=...".
var version, commit string

// Exit codes, for scripts.
const (
	exitOK          = 0 // done; with --wait, the pod Succeeded
	exitFailed      = 1 // the dispatcher refused or failed the request, or the pod ended Failed (--wait)
	exitUsage       = 2 // a bad command line or a bad manifest: nothing was sent
	exitUnreachable = 3 // the dispatcher could not be reached
	exitNotFound    = 4 // no such pod
	exitTimeout     = 5 // --wait gave up (--timeout) before the pod ended
)

const usage = `dispatcherctl runs pods on an interlink-dispatcher without Kubernetes.

usage:
  dispatcherctl apply -f FILE|- [-f FILE...] [--backend NAME] [-n NS] [--wait [--timeout 10m]] [--dry-run]
  dispatcherctl get [pods] [NAME] [-n NS] [--backend NAME] [--phase P] [-o wide|json|yaml] [-w]
  dispatcherctl logs NAME [-c CONTAINER] [-f] [--tail N | --limit-bytes N] [--since 5m | --since-time T]
                          [--timestamps] [--previous]
  dispatcherctl delete NAME [-n NS] [--grace-period S]
  dispatcherctl describe NAME [-n NS]
  dispatcherctl backends [-o wide|json|yaml]
  dispatcherctl ping
  dispatcherctl --version

apply reads Pods, ConfigMaps and Secrets (YAML or JSON, several documents a file, --- between them) and
sends each pod as interLink would: the objects each container mounts, projected and downwardAPI volumes
filled in, envFrom and ConfigMap/Secret key references resolved, a UID made when the pod has none.
--backend NAME sets the routing annotation (--routing-annotation, default dispatcher.interlink.eu/backend).
--wait prints what the pod waits on whenever it changes and ends when it Succeeded or Failed (a pod with
restartPolicy Always: when it runs ready); --dry-run prints the create requests instead of sending them.
get -w prints the list, then a pod's row again whenever it changes, and a last row Deleted.

Every command takes:
  --server URL|SOCKET   the dispatcher: http(s)://host:port, unix:///path or a socket path
                        (default $DISPATCHERCTL_SERVER, else http://127.0.0.1:4000)
  --token-file FILE     a bearer token of the dispatcher's access.token_file
                        (default $DISPATCHERCTL_TOKEN_FILE; $DISPATCHERCTL_TOKEN holds the token itself)
  --cacert, --cert, --key   TLS: the server's CA, a client certificate and its key (https:// only)
  --color auto|always|never  colour the phases (auto: only on a terminal, and not with NO_COLOR set)

NAME is the pod's name; with the same name in several namespaces, -n picks one. --uid UID names a pod by
its UID instead (logs, delete and describe), which needs no lookup.

Exit codes: 0 done (with --wait: the pod Succeeded), 1 refused or failed (with --wait: the pod Failed),
2 bad command line or manifest, 3 dispatcher unreachable, 4 no such pod, 5 --wait timed out.
`

// env is what every command gets: its streams, the environment, and the global options once parsed.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// isTerminal tells whether stdout is a terminal, for colour.
	isTerminal bool

	server, tokenFile, cacert, cert, key, color string
	colour                                      bool
}

func main() {
	buildinfo.PrintIfAsked("dispatcherctl", version, commit)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, isTerminal: isTerminal(os.Stdout)}
	os.Exit(e.run(ctx, os.Args[1:]))
}

// usageError is a bad command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// waitError is a --wait that ended without success: its exit code and sentence.
type waitError struct {
	code int
	msg  string
}

func (e *waitError) Error() string { return e.msg }

type command struct {
	run   func(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error
	flags func(fs *pflag.FlagSet)
}

var commands = map[string]*command{}

func (e *env) run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	name := args[0]
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(e.stderr, "dispatcherctl: %q is not a command; use apply, get, logs, delete, describe, backends or ping (dispatcherctl help)\n", name)
		return exitUsage
	}
	fs := pflag.NewFlagSet("dispatcherctl "+name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.server, "server", "", "the dispatcher")
	fs.StringVar(&e.tokenFile, "token-file", "", "a file holding the bearer token")
	fs.StringVar(&e.cacert, "cacert", "", "the CA of an https:// server")
	fs.StringVar(&e.cert, "cert", "", "a client certificate")
	fs.StringVar(&e.key, "key", "", "the client certificate's key")
	fs.StringVar(&e.color, "color", "auto", "auto, always or never")
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(e.stdout, usage)
			return exitOK
		}
		fmt.Fprintf(e.stderr, "dispatcherctl %s: %v (dispatcherctl help)\n", name, err)
		return exitUsage
	}
	switch e.color {
	case "always":
		e.colour = true
	case "never":
	case "auto":
		e.colour = e.isTerminal && e.getenv("NO_COLOR") == "" && e.getenv("TERM") != "dumb"
	default:
		fmt.Fprintf(e.stderr, "dispatcherctl %s: --color is auto, always or never, not %q\n", name, e.color)
		return exitUsage
	}
	err := cmd.run(ctx, e, fs, fs.Args())
	if err == nil {
		return exitOK
	}
	return e.report(name, err)
}

// report prints err as one line and returns its exit code.
func (e *env) report(name string, err error) int {
	var (
		ue *usageError
		me *client.ManifestError
		un *client.UnreachableError
		we *waitError
	)
	code := exitFailed
	switch {
	case errors.As(err, &ue), errors.As(err, &me):
		code = exitUsage
	case errors.As(err, &un):
		code = exitUnreachable
	case errors.As(err, &we):
		code = we.code
	case client.NotFound(err):
		code = exitNotFound
	case errors.Is(err, context.Canceled):
		return 130 // interrupted: the shell's code for SIGINT
	}
	if errors.As(err, &we) && we.msg == "" {
		return code // already told
	}
	fmt.Fprintf(e.stderr, "%s: %v\n", e.paint(red, "error"), err)
	return code
}

// client makes the dispatcher's client from the options, the environment and the defaults.
func (e *env) client() (*client.Client, error) {
	server := e.server
	if server == "" {
		server = e.getenv("DISPATCHERCTL_SERVER")
	}
	token := ""
	tokenFile := e.tokenFile
	if tokenFile == "" {
		tokenFile = e.getenv("DISPATCHERCTL_TOKEN_FILE")
	}
	if tokenFile != "" {
		raw, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, usagef("cannot read the token file: %v", err)
		}
		token = strings.TrimSpace(string(raw))
		if token == "" {
			return nil, usagef("the token file %s is empty", tokenFile)
		}
	} else {
		token = strings.TrimSpace(e.getenv("DISPATCHERCTL_TOKEN"))
	}
	c, err := client.New(client.Options{Server: server, Token: token, CAFile: e.cacert, CertFile: e.cert, KeyFile: e.key})
	if err != nil {
		return nil, usagef("%v", err)
	}
	return c, nil
}

// since is how long ago t was, as kubectl prints ages: 45s, 3m12s, 5h, 2d.
func since(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 10*time.Minute:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 3*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
