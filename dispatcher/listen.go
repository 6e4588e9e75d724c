package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// httpServer is the http.Server of every listener: headers and body within timeouts.read, an answer within
// timeouts.write (handlers with a longer budget extend it, see answerWithin), kept-alive connections idle
// for timeouts.idle at most. Without them a client that sends half a body holds a connection and a goroutine
// for as long as it likes.
func (s *Server) httpServer(h http.Handler, base context.Context) *http.Server {
	t := s.cfg.Timeouts
	srv := &http.Server{Handler: h, ReadHeaderTimeout: min(30*time.Second, t.Read), ReadTimeout: t.Read,
		WriteTimeout: t.Write, IdleTimeout: t.Idle, ErrorLog: s.httpErrorLog()}
	if base != nil {
		srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(base) }
	}
	return srv
}

// answerWithin gives the answer of this request budget plus timeouts.write from now, for a handler whose
// work has a known bound longer than what the server's write timeout leaves it (a create, a delete's grace
// period). A response writer that cannot set deadlines (a test recorder) is left as it is.
func (s *Server) answerWithin(w http.ResponseWriter, budget time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(budget + s.cfg.Timeouts.Write))
}

// bodyRead lifts the read deadline once the body is in: the server keeps reading the connection to notice a
// client that leaves, and a deadline passing there would cancel a handler that is still working.
func bodyRead(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}

// limitListener refuses a connection whose client already holds max open ones on this listener: it is
// answered 503 with a sentence and closed, and counted. A client is a remote IP; every connection to a unix
// socket is the same client (who may connect at all is the socket file's permissions), so the socket is
// bound as a whole.
type limitListener struct {
	net.Listener
	name string // "tcp", "unix", "metrics": the metric's label
	max  int
	obs  Observer
	log  *slog.Logger

	mu   sync.Mutex
	open map[string]int
}

func newLimitListener(l net.Listener, name string, max int, obs Observer, log *slog.Logger) *limitListener {
	return &limitListener{Listener: l, name: name, max: max, obs: obs, log: log, open: map[string]int{}}
}

// limitConnections bounds l by limits.max_connections_per_client; name labels its refusals.
func (s *Server) limitConnections(l net.Listener, name string) net.Listener {
	return newLimitListener(l, name, s.cfg.Limits.MaxConnectionsPerClient, s.obs, s.log)
}

// clientOf names the client of a connection for the limit.
func clientOf(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return "unix"
}

// Accept returns the next connection within the limit; refused ones never reach the HTTP server.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := clientOf(c)
		l.mu.Lock()
		n := l.open[client]
		if n < l.max {
			l.open[client] = n + 1
		}
		l.mu.Unlock()
		if n < l.max {
			return &limitedConn{Conn: c, release: func() { l.release(client) }}, nil
		}
		l.obs.ConnectionRefused(l.name)
		l.log.Debug("connection refused: its client holds limits.max_connections_per_client already",
			"client", client, "listener", l.name, "limit", l.max)
		go refuse(c, l.max)
	}
}

func (l *limitListener) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[client]--; l.open[client] <= 0 {
		delete(l.open, client)
	}
}

// refuse answers a connection over the limit with a 503 naming the limit and closes it, within a second.
func refuse(c net.Conn, max int) {
	defer c.Close()
	msg := fmt.Sprintf("this client holds %d connections to the dispatcher already (limits.max_connections_per_client); close some or reuse them\n", max)
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
}

// limitedConn gives its place back once, when closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
