package libpod

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

type dialFunc func(ctx context.Context) (net.Conn, error)

// dialer returns how to open one connection to the service at uri.
func dialer(uri, identity string) (dialFunc, error) {
	if strings.HasPrefix(uri, "/") {
		uri = "unix://" + uri
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("the Podman service address %q is not a URI: %w", uri, err)
	}
	switch u.Scheme {
	case "unix":
		path := u.Path
		if path == "" {
			path = u.Opaque
		}
		if u.Host != "" || !filepath.IsAbs(path) {
			return nil, fmt.Errorf("the Podman service address %q must name an absolute socket path (unix:///run/podman/podman.sock)", uri)
		}
		return func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}, nil
	case "tcp":
		if u.Host == "" || u.Port() == "" {
			return nil, fmt.Errorf("the Podman service address %q must be tcp://host:port", uri)
		}
		host := u.Host
		return func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", host)
		}, nil
	case "ssh":
		if u.Hostname() == "" || !filepath.IsAbs(u.Path) {
			return nil, fmt.Errorf("the Podman service address %q must be ssh://[user@]host[:port]/path/to/podman.sock", uri)
		}
		return sshDialer(u, identity), nil
	default:
		return nil, fmt.Errorf("the Podman service address %q has scheme %q; use unix://, tcp:// or ssh://", uri, u.Scheme)
	}
}

// sshDialer forwards each connection through `ssh -W <socket>`, which OpenSSH supports for unix sockets on
// the remote side. Using the ssh command keeps the user's ssh configuration, known_hosts and agent, and keeps
// an SSH library out of the dependency tree.
func sshDialer(u *url.URL, identity string) dialFunc {
	args := []string{"-W", u.Path, "-o", "BatchMode=yes", "-o", "ServerAliveInterval=30"}
	if u.Port() != "" {
		args = append(args, "-p", u.Port())
	}
	if identity != "" {
		args = append(args, "-i", identity)
	}
	target := u.Hostname()
	if u.User != nil && u.User.Username() != "" {
		target = u.User.Username() + "@" + target
	}
	args = append(args, "--", target)
	return func(ctx context.Context) (net.Conn, error) {
		// The connection outlives the dial's context: the command is ended by Close, not by ctx.
		cmd := exec.Command("ssh", args...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		stderr := &limitedBuilder{max: 4096}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting ssh to %s: %w", target, err)
		}
		return &cmdConn{cmd: cmd, r: stdout, w: stdin, stderr: stderr, target: target}, nil
	}
}

// limitedBuilder keeps the first max bytes of ssh's stderr, to explain a connection that ends at once.
type limitedBuilder struct {
	mu  sync.Mutex
	b   strings.Builder
	max int
}

func (l *limitedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *limitedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

// cmdConn is a net.Conn over a command's stdin and stdout. Deadlines are not supported; the HTTP client
// relies on contexts, which close the connection.
type cmdConn struct {
	cmd    *exec.Cmd
	r      io.ReadCloser
	w      io.WriteCloser
	stderr *limitedBuilder
	target string
	once   sync.Once
	// exited is closed once the command has been waited for: exec copies its stderr in a goroutine that
	// Wait joins, so only then is the stderr complete.
	waitOnce sync.Once
	exited   chan struct{}
}

// sshExitWait bounds the wait for ssh to exit after it closed its output, to read why.
const sshExitWait = 2 * time.Second

func (c *cmdConn) wait() <-chan struct{} {
	c.waitOnce.Do(func() {
		c.exited = make(chan struct{})
		go func() {
			_ = c.cmd.Wait()
			close(c.exited)
		}()
	})
	return c.exited
}

func (c *cmdConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF && n == 0 {
		if why := c.exitError(); why != nil {
			return 0, why
		}
	}
	return n, err
}

// Write fails when ssh has exited (a broken pipe, if the request is written before the response is read):
// that too is explained by what ssh said.
func (c *cmdConn) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		if why := c.exitError(); why != nil {
			return n, why
		}
	}
	return n, err
}

// exitError waits (sshExitWait at most) for ssh to exit and returns what it said on stderr as an error, or
// nil when it said nothing.
func (c *cmdConn) exitError() error {
	select {
	case <-c.wait():
	case <-time.After(sshExitWait):
	}
	if msg := strings.TrimSpace(c.stderr.String()); msg != "" {
		return fmt.Errorf("ssh to %s: %s", c.target, msg)
	}
	return nil
}

func (c *cmdConn) Close() error {
	c.once.Do(func() {
		c.w.Close()
		if c.cmd.Process != nil {
			_ = c.cmd.Process.Kill()
		}
		<-c.wait()
		c.r.Close()
	})
	return nil
}
func (c *cmdConn) LocalAddr() net.Addr                { return sshAddr(c.target) }
func (c *cmdConn) RemoteAddr() net.Addr               { return sshAddr(c.target) }
func (c *cmdConn) SetDeadline(t time.Time) error      { return nil }
func (c *cmdConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *cmdConn) SetWriteDeadline(t time.Time) error { return nil }

type sshAddr string

func (a sshAddr) Network() string { return "ssh" }
func (a sshAddr) String() string  { return string(a) }
