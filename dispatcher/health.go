package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/openapi"
)

// opsPaths are the probes and the scrape: served on the API listeners and on the metrics listener, logged at
// debug. /health is /healthz under the name interLink's plugin guide has its images check.
var opsPaths = []string{"/healthz", "/health", "/readyz", "/metrics"}

// opsRoutes adds the probes (the scrape is one of Options.Routes).
func (s *Server) opsRoutes(r chi.Router) {
	r.Get("/healthz", s.healthz)
	r.Get("/health", s.healthz)
	r.Get("/readyz", s.readyz)
}

// openapiDocument serves the OpenAPI document of the API (dispatcher/openapi).
func (s *Server) openapiDocument(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapi.Document())
}

// healthz answers 200 while the process serves: a liveness probe.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// readyz answers 200 when ready, else 503, with the Readiness as JSON either way.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	rd := s.core.Readiness()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !rd.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	writeJSON(w, rd)
}

// OpsHandler serves only /healthz, /readyz and the extra routes of Options.Routes (/metrics): what the
// separate metrics listener offers, so that it never exposes the interLink API.
func (s *Server) OpsHandler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.logRequests, s.access.middleware, s.recoverer)
	s.opsRoutes(r)
	if s.routes != nil {
		s.routes(r)
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		httpError(w, r, http.StatusNotFound, fmt.Sprintf("%s is not served on the metrics listener; use /metrics, /healthz (or /health) or /readyz", r.URL.Path))
	})
	return r
}

// ServeOps serves OpsHandler on addr (metrics.listen) until ctx ends. ready, if not nil, is called with
// the listener's address once it accepts.
func (s *Server) ServeOps(ctx context.Context, addr string, ready func(net.Addr)) error {
	l := s.opsListener
	if l == nil || addr != s.cfg.Metrics.Listen {
		var err error
		if l, err = listenTCP(addr, "metrics.listen", nil); err != nil {
			return err
		}
	}
	srv := s.httpServer(s.OpsHandler(), nil)
	s.log.Info("serving metrics", "address", l.Addr().String())
	if ready != nil {
		ready(l.Addr())
	}
	errc := make(chan error, 1)
	limited := s.limitConnections(l, "metrics")
	go func() { errc <- srv.Serve(limited) }()
	select {
	case err := <-errc:
		return fmt.Errorf("the metrics server stopped: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
