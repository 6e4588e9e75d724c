// Package client is a Go client of the dispatcher's two HTTP APIs, the interLink plugin routes (/create,
// /status, /delete, /getLogs) and the admin routes (/api/v1/...), and the manifest handling that turns pod,
// ConfigMap and Secret documents into the create request interLink's virtual kubelet would send. It is what
// dispatcherctl is built on; it imports nothing of the dispatcher itself.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// DefaultServer is where a dispatcher listens out of the box (listen.tcp in config.yaml).
const DefaultServer = "http://127.0.0.1:4000"

// Options say how to reach a dispatcher.
type Options struct {
	// Server is a URL (http:// or https://), a unix socket as unix:///path, or a bare socket path.
	Server string
	// Token is sent as "Authorization: Bearer <token>" (access.token_file); "" sends none.
	Token string
	// CAFile verifies an https:// server; CertFile and KeyFile are a client certificate
	// (listen.tls.client_ca_file).
	CAFile, CertFile, KeyFile string
	// Timeout bounds each request but the streamed ones (a followed log); 0 is 30 s.
	Timeout time.Duration
}

// Client talks to one dispatcher.
type Client struct {
	base    string // scheme and host the paths are appended to
	display string // the server as the user named it, for messages
	token   string
	http    *http.Client // requests with a deadline
	stream  *http.Client // followed logs: no deadline
}

// New makes a client; it fails on a server it cannot parse or TLS files it cannot read.
func New(o Options) (*Client, error) {
	server := strings.TrimSpace(o.Server)
	if server == "" {
		server = DefaultServer
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	c := &Client{display: server, token: o.Token}
	switch {
	case strings.HasPrefix(server, "unix://") || strings.HasPrefix(server, "/") || strings.HasPrefix(server, "./"):
		path := strings.TrimPrefix(server, "unix://")
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
		c.base = "http://unix" // interLink sends Host: unix on a socket too
	default:
		u, err := url.Parse(server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("the server %q is neither a URL like http://127.0.0.1:4000 nor a unix socket path like /run/interlink-dispatcher/api.sock", server)
		}
		c.base = u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/")
		if u.Scheme == "https" {
			tc, err := tlsConfig(o)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = tc
		}
	}
	if o.CertFile != "" && !strings.HasPrefix(c.base, "https://") {
		return nil, fmt.Errorf("a client certificate is sent over https:// only; the server %q is not one", server)
	}
	c.http = &http.Client{Transport: tr, Timeout: timeout}
	c.stream = &http.Client{Transport: tr}
	return c, nil
}

func tlsConfig(o Options) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA file %s holds no PEM certificate", o.CAFile)
		}
		tc.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("give both the client certificate and its key, or neither")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load the client certificate %s with the key %s: %v", o.CertFile, o.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Server is the server as it was given, for messages.
func (c *Client) Server() string { return c.display }

// UnreachableError is a dispatcher that could not be reached at all: nothing listens, the socket is
// missing, the name does not resolve, the connection timed out.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	why := e.Err.Error()
	var op *net.OpError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(e.Err, &cv):
		return fmt.Sprintf("the dispatcher at %s has a certificate this client does not trust (%v); give its CA with --cacert", e.Server, cv.Err)
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		why = "nothing is listening there (connection refused)"
	case errors.Is(e.Err, os.ErrNotExist) || errors.Is(e.Err, syscall.ENOENT):
		why = "the socket does not exist"
	case errors.Is(e.Err, os.ErrPermission) || errors.Is(e.Err, syscall.EACCES):
		why = "permission denied on the socket (its group is listen.unix_group)"
	case errors.Is(e.Err, context.DeadlineExceeded) || os.IsTimeout(e.Err):
		why = "no answer in time"
	case errors.As(e.Err, &op) && op.Err != nil:
		why = op.Err.Error()
	}
	return fmt.Sprintf("cannot reach the dispatcher at %s: %s; is it running? (choose it with --server or DISPATCHERCTL_SERVER)", e.Server, why)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// APIError is a dispatcher's refusal: its status code and its one sentence.
type APIError struct {
	Code    int
	Message string
	Path    string
}

func (e *APIError) Error() string { return e.Message }

// NotFound reports whether err is a 404 of the dispatcher.
func NotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == http.StatusNotFound
}

// NoAdminAPIError is a dispatcher that does not serve the admin routes (one older than this client).
type NoAdminAPIError struct{ Server string }

func (e *NoAdminAPIError) Error() string {
	return fmt.Sprintf("the dispatcher at %s serves no admin API (/api/v1): it is older than this dispatcherctl; upgrade it (meanwhile logs and delete can name a pod by --uid with its name and -n)", e.Server)
}

// errorMessage is the one sentence of an error answer: {"error": "..."} or plain text.
func errorMessage(code int, body []byte) string {
	var je struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &je) == nil && je.Error != "" {
		return je.Error
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = fmt.Sprintf("the dispatcher answered %d %s with no reason", code, http.StatusText(code))
	}
	return msg
}

// send does one request with a JSON body (nil: none, but still a Content-Length as interLink sends) and
// returns the response, whose status the caller checks. stream drops the deadline.
func (c *Client) send(ctx context.Context, method, path string, body any, session string, stream bool) (*http.Response, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/plain")
	req.Header.Set("User-Agent", "dispatcherctl")
	if session != "" {
		req.Header.Set("InterLink-Http-Session", session) // the dispatcher's request log shows it
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := c.http
	if stream {
		hc = c.stream
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &UnreachableError{Server: c.display, Err: err}
	}
	return resp, nil
}

// call does a request and decodes a 200's JSON body into out (nil: the body is returned as text).
func (c *Client) call(ctx context.Context, method, path string, body any, session string, out any) ([]byte, error) {
	resp, err := c.send(ctx, method, path, body, session, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("the answer of the dispatcher at %s to %s was cut: %w", c.display, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return raw, &APIError{Code: resp.StatusCode, Message: errorMessage(resp.StatusCode, raw), Path: path}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("the dispatcher at %s answered %s with something that is not the expected JSON (%v); is it a dispatcher?", c.display, path, err)
		}
	}
	return raw, nil
}
