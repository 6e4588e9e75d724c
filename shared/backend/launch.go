package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	plugin "github.com/hashicorp/go-plugin"
)

// LaunchConfig says which backend binary to start and how.
type LaunchConfig struct {
	Name   string   // the backend's name in the dispatcher config
	Path   string   // the backend binary
	Args   []string // its arguments
	Env    Env      // handed to the process; Env.Name defaults to Name
	SHA256 string   // optional hex checksum of the binary, checked through go-plugin's SecureConfig
	// Logger receives the backend's stderr log lines, each with its own level, message and fields and
	// tagged backend=<Name>; nil means slog.Default().
	Logger *slog.Logger
}

// defaultStartTimeout bounds the handshake when Launch's ctx has no deadline.
const defaultStartTimeout = time.Minute

// exitPollInterval is how often a Process checks whether its backend exited: go-plugin only offers a
// query, not a channel, and waiting on the process ourselves would race go-plugin's own wait.
const exitPollInterval = 100 * time.Millisecond

// Process is a running backend binary. Its Backend methods are calls over gRPC; once the process has
// exited they fail with KindUnavailable.
type Process struct {
	Backend

	name   string
	pid    int
	desc   Description
	client *plugin.Client

	done     chan struct{}
	doneOnce sync.Once
	stopOnce sync.Once

	cmd *exec.Cmd   // for its exit status, once go-plugin has waited for it
	hl  *slogLogger // for what it said last
}

// Launch starts the binary, completes the versioned handshake (with go-plugin's AutoMTLS, and its
// SecureConfig when cfg.SHA256 is set), checks Describe's protocol version and returns the running process.
// ctx's deadline bounds the handshake (a minute without one) and ctx bounds the Describe call; the process
// then runs until Stop, or until it exits by itself (see Done).
func Launch(ctx context.Context, cfg LaunchConfig) (*Process, error) {
	if cfg.Name == "" {
		return nil, errors.New("a backend needs a name to be launched")
	}
	if err := checkBinary(cfg.Name, cfg.Path); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("backend", cfg.Name)

	env := cfg.Env
	if env.Name == "" {
		env.Name = cfg.Name
	}
	if len(env.Config) == 0 {
		env.Config = json.RawMessage("{}")
	}
	envJSON, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("backend %q: its config cannot be passed to it as JSON: %v", cfg.Name, err)
	}

	var secure *plugin.SecureConfig
	if cfg.SHA256 != "" {
		sum, err := hex.DecodeString(strings.TrimSpace(cfg.SHA256))
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("backend %q: sha256 %q is not a SHA-256 checksum (64 hexadecimal digits)",
				cfg.Name, cfg.SHA256)
		}
		secure = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}

	startTimeout := defaultStartTimeout
	if dl, ok := ctx.Deadline(); ok {
		startTimeout = time.Until(dl)
		if startTimeout <= 0 {
			return nil, fmt.Errorf("backend %q was not started: %w", cfg.Name, context.DeadlineExceeded)
		}
	}

	cmd := exec.Command(cfg.Path, cfg.Args...)
	// go-plugin appends the dispatcher's own environment and its handshake variables to these.
	cmd.Env = []string{EnvVar + "=" + string(envJSON), levelEnv + "=" + minLevel(logger)}
	// The backend gets SIGTERM if the dispatcher dies without stopping it (see startPinned); Serve also
	// watches its parent, where the OS has no such signal.
	cmd.SysProcAttr = parentDeathAttr()
	hl := newSlogLogger(logger)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(nil),
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hl,
		StartTimeout:     startTimeout,
		GRPCDialOptions:  dialOptions(),
	})

	exited, err := startPinned(client, cmd)
	var rpc plugin.ClientProtocol
	if err == nil {
		rpc, err = client.Client() // the process is started: this only connects
	}
	if err != nil {
		client.Kill()
		// go-plugin may give up on the handshake before it has read the backend's last stderr lines, which
		// say why it failed; it has read them all once it reports the process exited.
		for deadline := time.Now().Add(2 * time.Second); !client.Exited() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if err := badConfig(cfg.Name, client, cmd, hl); err != nil {
			return nil, err
		}
		return nil, startError(cfg, hl, err)
	}
	raw, err := rpc.Dispense(PluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("backend %q (%s) does not serve the backend plugin: %v", cfg.Name, cfg.Path, err)
	}
	b, ok := raw.(Backend)
	if !ok {
		client.Kill()
		return nil, fmt.Errorf("backend %q (%s) served a %T, not a backend", cfg.Name, cfg.Path, raw)
	}
	if c, ok := b.(*Client); ok {
		c.name, c.exited = cfg.Name, client.Exited
	}
	desc, err := b.Describe(ctx)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("backend %q (%s) started but does not describe itself: %w", cfg.Name, cfg.Path, err)
	}
	if desc.ProtocolVersion != ProtocolVersion {
		client.Kill()
		return nil, versionError(cfg.Name, cfg.Path, desc.ProtocolVersion)
	}

	pid, _ := strconv.Atoi(client.ID())
	p := &Process{Backend: b, name: cfg.Name, pid: pid, desc: desc, client: client, done: make(chan struct{}), cmd: cmd, hl: hl}
	go p.watch(exited)
	return p, nil
}

// BadConfigError is a backend process that exited with ExitBadConfig: its config is wrong, and starting it
// again changes nothing until the config is fixed. Reason is the last thing it said (one sentence, naming
// the key), or a sentence saying it said nothing.
type BadConfigError struct {
	Backend string
	Reason  string
}

func (e *BadConfigError) Error() string {
	return fmt.Sprintf("backend %q is misconfigured: %s", e.Backend, strings.TrimSuffix(e.Reason, "."))
}

// badConfig is the *BadConfigError of a backend process that exited with ExitBadConfig, nil for one that
// exited otherwise or runs.
func badConfig(name string, client *plugin.Client, cmd *exec.Cmd, hl *slogLogger) error {
	// Exited, the process has been waited for: its exit status is there to read.
	if client.Exited() && cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == ExitBadConfig {
		return &BadConfigError{Backend: name, Reason: hl.lastSaid()}
	}
	return nil
}

// BadConfig is a *BadConfigError once the process has exited with ExitBadConfig (its config turned out
// wrong after it started), nil otherwise.
func (p *Process) BadConfig() error { return badConfig(p.name, p.client, p.cmd, p.hl) }

// checkBinary turns the usual mistakes with a backend's path into sentences before go-plugin tries it.
func checkBinary(name, path string) error {
	if path == "" {
		return fmt.Errorf("backend %q has no binary path", name)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("backend %q: its binary cannot be used: %v", name, err)
	}
	if st.IsDir() {
		return fmt.Errorf("backend %q: its binary %s is a directory", name, path)
	}
	if st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("backend %q: its binary %s is not executable", name, path)
	}
	return nil
}

// startError says why a backend did not complete the handshake, with what the backend itself said last
// (a factory error, typically) when it said anything.
func startError(cfg LaunchConfig, hl *slogLogger, err error) error {
	if vErr := versionMismatch(cfg.Name, cfg.Path, err); vErr != nil {
		return vErr
	}
	if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		actual := "unknown"
		if f, ferr := os.Open(cfg.Path); ferr == nil {
			h := sha256.New()
			if _, cerr := io.Copy(h, f); cerr == nil {
				actual = hex.EncodeToString(h.Sum(nil))
			}
			f.Close()
		}
		return fmt.Errorf("backend %q was not started: the SHA-256 of %s is %s, but its config says sha256 %s; "+
			"fix the checksum in the config if this binary is the one you meant", cfg.Name, cfg.Path, actual,
			strings.ToLower(strings.TrimSpace(cfg.SHA256)))
	}
	if said := hl.lastError(); said != "" {
		// go-plugin's own explanation (an unrecognised handshake line...) would only hide what the backend said.
		return fmt.Errorf("backend %q (%s) did not start; it said: %s", cfg.Name, cfg.Path, said)
	}
	return fmt.Errorf("backend %q (%s) did not start: %v", cfg.Name, cfg.Path, err)
}

// startPinned starts the backend process from a goroutine locked to its OS thread until the process has
// exited, and returns a channel closed then. Linux sends the parent-death signal when the thread that forked
// the child ends, not the process: the Go runtime ends a thread when a goroutine locked to it returns, so a
// fork made on a thread some caller had locked would have its backend killed when that caller finishes. A
// thread of its own, held as long as the backend lives, ends only with the dispatcher.
func startPinned(client *plugin.Client, cmd *exec.Cmd) (exited <-chan struct{}, err error) {
	started := make(chan error, 1)
	gone := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(gone)
		_, err := client.Start()
		started <- err
		if cmd.Process == nil {
			return // never forked
		}
		for !client.Exited() {
			time.Sleep(exitPollInterval)
		}
	}()
	return gone, <-started
}

// watch marks the process done once it has exited (exited, from startPinned), unless Stop did first.
func (p *Process) watch(exited <-chan struct{}) {
	select {
	case <-p.done:
	case <-exited:
		p.closeDone()
	}
}

func (p *Process) closeDone() { p.doneOnce.Do(func() { close(p.done) }) }

// Done is closed when the backend process has exited, whether it was stopped, crashed or was killed.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop stops the backend gracefully: go-plugin asks it to shut down and kills it if it has not exited two
// seconds later. Stop returns once the process has exited; calling it again does nothing.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		p.client.Kill()
		p.closeDone()
	})
}

// Name is the backend's name in the dispatcher config.
func (p *Process) Name() string { return p.name }

// PID is the backend process's id.
func (p *Process) PID() int { return p.pid }

// Description is what the backend answered to Describe when it was launched.
func (p *Process) Description() Description { return p.desc }
