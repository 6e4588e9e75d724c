// Package dispatcher is the interLink plugin endpoint that routes each pod to one of several backend
// processes.
//
// Its decisions are the Core (core.go), a Go API free of HTTP: create.go, delete.go, status.go, logs.go and
// ping.go are its interLink operations, pods.go and backends.go what the admin API reads (the pods it holds,
// the backends' health); unknown.go answers for pods the journal does not know, routing.go and policy.go
// decide where a pod may go, journal.go remembers where each went, reconcile.go brings the journal in line
// with what the backends run, and supervisor.go runs the backend processes.
//
// Server (this file) is the HTTP front over the Core: the routes and middleware (api.go), the interLink
// routes (interlink.go), the admin API (admin.go), the probes (health.go), the listeners (listen.go) and
// their access control (access.go), and the metrics (metrics.go). It decodes, calls the Core and encodes.
package dispatcher

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/go-chi/chi/v5"
)

// Options are what a Server and its Core are built from.
type Options struct {
	Config   Config
	Journal  *Journal
	Backends *Supervisor
	Logger   *slog.Logger
	Observer Observer // nil observes nothing
	// Validate defaults to shared/pod.Validate. Each backend's policy (Config.Backends[].Policy) is checked
	// beside it whatever it is.
	Validate ValidateFunc
	// Routes, if set, adds routes beside the interLink API (e.g. /metrics, /healthz).
	Routes func(chi.Router)
}

// Server is the HTTP front of a Core: the interLink plugin API, the admin API, the probes, the access
// control and the request log, on the configured listeners.
type Server struct {
	core   *Core
	cfg    Config
	log    *slog.Logger
	obs    Observer
	routes func(chi.Router)
	access *accessControl

	// draining is cancelled when shutdown starts: followed log streams never end by themselves, so they end
	// there rather than hold the shutdown for its whole timeout.
	draining     context.Context
	stopDraining context.CancelFunc

	// listeners and opsListener are what Listen opened, for Serve and ServeOps.
	listeners   []net.Listener
	opsListener net.Listener
}

// NewServer builds the core (NewCore) and the HTTP front over it.
func NewServer(o Options) (*Server, error) {
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{cfg: o.Config, log: o.Logger, obs: o.Observer, routes: o.Routes}
	s.draining, s.stopDraining = context.WithCancel(context.Background())
	var err error
	if s.access, err = newAccessControl(o.Config, o.Logger); err != nil {
		return nil, err
	}
	if s.core, err = NewCore(o); err != nil {
		return nil, err
	}
	return s, nil
}

// Core is the decisions the server serves.
func (s *Server) Core() *Core { return s.core }

// Listen opens the API listeners (listen.tcp, listen.unix) and the metrics listener (metrics.listen), so that
// an address in use is reported before the backends are launched; Serve and ServeOps then serve them.
// Calling it is optional: Serve and ServeOps open what Listen has not.
func (s *Server) Listen() error {
	lns, err := s.listen()
	if err != nil {
		return err
	}
	if s.cfg.Metrics.Listen != "" {
		l, err := listenTCP(s.cfg.Metrics.Listen, "metrics.listen", nil)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return err
		}
		s.opsListener = l
	}
	s.listeners = lns
	return nil
}

// listen opens the API listeners.
func (s *Server) listen() ([]net.Listener, error) {
	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	if s.cfg.Listen.TCP != "" {
		var tc *tls.Config
		if s.cfg.Listen.TLS.CertFile != "" {
			var err error
			if tc, err = serverTLS(s.cfg.Listen.TLS); err != nil {
				return nil, fmt.Errorf("config key listen.tls: %w", err)
			}
		}
		l, err := listenTCP(s.cfg.Listen.TCP, "listen.tcp", nil)
		if err != nil {
			return nil, err
		}
		// The connection limit sits under TLS: a refused connection costs no handshake, and the HTTP server
		// still sees the *tls.Conn it needs for r.TLS.
		l = s.limitConnections(l, "tcp")
		if tc != nil {
			l = tls.NewListener(l, tc)
		}
		lns = append(lns, l)
	}
	if s.cfg.Listen.Unix != "" {
		l, err := listenUnix(s.cfg.Listen)
		if err != nil {
			closeAll()
			return nil, err
		}
		lns = append(lns, s.limitConnections(l, "unix"))
	}
	return lns, nil
}

// Serve listens on the configured TCP address and/or unix socket until ctx ends, then stops accepting,
// lets in-flight requests finish within timeouts.shutdown, and returns. ready, if not nil, is called with the
// listeners' addresses once they accept.
func (s *Server) Serve(ctx context.Context, ready func(addrs []net.Addr)) error {
	lns := s.listeners
	if lns == nil {
		var err error
		if lns, err = s.listen(); err != nil {
			return err
		}
	}

	srv := s.httpServer(s.Handler(), ctx)
	errc := make(chan error, len(lns))
	addrs := make([]net.Addr, 0, len(lns))
	for _, l := range lns {
		addrs = append(addrs, l.Addr())
		s.log.Info("listening", "address", l.Addr().String(), "network", l.Addr().Network())
		go func() { errc <- srv.Serve(l) }()
	}
	if ready != nil {
		ready(addrs)
	}
	select {
	case err := <-errc:
		srv.Close()
		return fmt.Errorf("the HTTP server stopped: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: no new requests, waiting for in-flight ones", "timeout", s.cfg.Timeouts.Shutdown)
	s.stopDraining()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeouts.Shutdown)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("in-flight requests did not finish within timeouts.shutdown; closing them")
		srv.Close()
		err = nil
	}
	if s.cfg.Listen.Unix != "" {
		os.Remove(s.cfg.Listen.Unix)
	}
	return err
}

// httpErrorLog sends what net/http reports about connections (a failed TLS handshake: a client certificate
// of another CA, plain HTTP on the TLS port) to the dispatcher's log rather than to stderr unformatted.
func (s *Server) httpErrorLog() *log.Logger {
	return slog.NewLogLogger(s.log.With("component", "http").Handler(), slog.LevelWarn)
}

// removeStaleSocket removes a socket file left by a previous run, but never another kind of file, and
// refuses a socket someone still listens on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot check the unix socket path %s (listen.unix): %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("listen.unix %s exists and is not a socket; choose another path", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("listen.unix %s is in use by another process; stop it or choose another path", path)
	}
	return os.Remove(path)
}
