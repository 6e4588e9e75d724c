// Package dispatcher is the interLink plugin endpoint that routes each pod to one of several backend
// processes: the HTTP API in front (api.go), routing (routing.go), the journal (journal.go), the supervision of
// backend processes (supervisor.go), and reconciliation of the journal with what the backends run.
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
	"path/filepath"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/keyed"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// ValidateFunc checks a pod against a backend's capabilities and returns a backend.KindInvalid error naming
// the field paths it cannot honour.
type ValidateFunc func(p *v1.Pod, caps backend.Capabilities, backendName string) error

// Options are what a Server is built from.
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

// Server serves the interLink plugin API over the backends.
type Server struct {
	cfg      Config
	journal  *Journal
	backends *Supervisor
	router   *Router
	log      *slog.Logger
	obs      Observer
	validate ValidateFunc
	policies map[string]backendPolicy // by backend name: what the operator allows its pods on the host
	routes   func(chi.Router)
	access   *accessControl

	locks keyed.Mutex // serialises create and delete of one pod UID: a retried create racing the first cannot journal twice or race a delete

	// abandoned are pods whose create lost its answer with the backend down for good: see createAgain.
	abandonedMu sync.Mutex
	abandoned   map[string]abandonedPod
	// refused are the answers of failed creates, reported as the status of those pods (unknown.go).
	refused refusals
	// asked are the first status requests for pods not known yet, whose create may be on its way (unknown.go).
	asked asks

	// draining is cancelled when shutdown starts: followed log streams never end by themselves, so they end
	// there rather than hold the shutdown for its whole timeout.
	draining     context.Context
	stopDraining context.CancelFunc

	// rememberMu is held by remember from its journal write to its memory update, and taken by journalDelete
	// before it forgets a pod's memory: see remember.
	rememberMu sync.Mutex
	statusMu   sync.Mutex
	lastStatus map[string]interlink.PodStatus // last status per journaled pod UID
	// seenRunning holds the journaled pods seen past Pending, so that create-to-running is observed once.
	seenRunning map[string]bool
}

// NewServer builds a server and loads the last known statuses from the journal. It wires itself as the
// supervisor's OnUp so that every backend start reconciles the journal.
func NewServer(o Options) (*Server, error) {
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	if o.Validate == nil {
		o.Validate = pod.Validate
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{
		cfg: o.Config, journal: o.Journal, backends: o.Backends, log: o.Logger, obs: o.Observer,
		validate: o.Validate, policies: policies(o.Config.Backends), routes: o.Routes,
		router:     NewRouter(o.Config.Routing, o.Config.Backends),
		lastStatus: map[string]interlink.PodStatus{}, seenRunning: map[string]bool{},
	}
	s.draining, s.stopDraining = context.WithCancel(context.Background())
	var err error
	if s.access, err = newAccessControl(o.Config, o.Logger); err != nil {
		return nil, err
	}
	entries, err := o.Journal.All()
	if err != nil {
		return nil, fmt.Errorf("cannot read the journal: %w; move the file %s aside to start afresh (pods are found again through the backends)", err, filepath.Join(o.Config.DataDir, "journal.db"))
	}
	for _, e := range entries {
		if e.LastStatus != nil {
			s.lastStatus[e.UID] = *e.LastStatus
			if pod.Phase(*e.LastStatus) != v1.PodPending {
				s.seenRunning[e.UID] = true
			}
		}
	}
	o.Backends.OnUp = s.Reconcile
	return s, nil
}

// Serve listens on the configured TCP address and/or unix socket until ctx ends, then stops accepting,
// lets in-flight requests finish within timeouts.shutdown, and returns. ready, if not nil, is called with the
// listeners' addresses once they accept.
func (s *Server) Serve(ctx context.Context, ready func(addrs []net.Addr)) error {
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
				return fmt.Errorf("config key listen.tls: %w", err)
			}
		}
		l, err := listenTCP(s.cfg.Listen.TCP, "listen.tcp", nil)
		if err != nil {
			return err
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
			return err
		}
		lns = append(lns, s.limitConnections(l, "unix"))
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

// journalPut writes an entry and tells the observer how long it took.
func (s *Server) journalPut(e Entry) error {
	start := time.Now()
	err := s.journal.Put(e)
	s.obs.JournalWrite(time.Since(start), err)
	return err
}

func (s *Server) journalDelete(uid string) error {
	start := time.Now()
	err := s.journal.Delete(uid)
	s.obs.JournalWrite(time.Since(start), err)
	// After the entry is gone: a status remembered meanwhile is then forgotten here, and one remembered
	// later finds no entry and is not kept.
	s.rememberMu.Lock()
	s.statusMu.Lock()
	delete(s.lastStatus, uid)
	delete(s.seenRunning, uid)
	s.statusMu.Unlock()
	s.rememberMu.Unlock()
	return err
}

// locate finds the backend of a pod: the journal first, then routing. ok is false with a reason when no
// backend can be named.
func (s *Server) locate(p *v1.Pod) (name string, entry Entry, journaled bool, err error) {
	e, found, err := s.journal.Get(string(p.UID))
	if err != nil {
		return "", Entry{}, false, fmt.Errorf("cannot read the journal: %w", err)
	}
	if found {
		return e.Backend, e, true, nil
	}
	rt, err := s.router.Route(p)
	if err != nil {
		return "", Entry{}, false, err
	}
	return rt.Backend, Entry{}, false, nil
}

// podCounts reports the journaled pods by backend and phase (from their last known status; Pending until one
// is known) and their total, for the metrics.
func (s *Server) podCounts() (map[string]map[v1.PodPhase]int, int, error) {
	entries, err := s.journal.All()
	if err != nil {
		return nil, 0, err
	}
	out := map[string]map[v1.PodPhase]int{}
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	for _, e := range entries {
		phase := v1.PodPending
		if st, ok := s.lastStatus[e.UID]; ok {
			phase = pod.Phase(st)
		} else if e.LastStatus != nil {
			phase = pod.Phase(*e.LastStatus)
		}
		if out[e.Backend] == nil {
			out[e.Backend] = map[v1.PodPhase]int{}
		}
		out[e.Backend][phase]++
	}
	return out, len(entries), nil
}
