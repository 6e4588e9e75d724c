// Package libpod is a thin typed client of Podman's libpod REST API (v4), one file per remote operation. It
// talks HTTP over a unix socket, TCP or an SSH-forwarded socket, and imports nothing of Podman itself.
package libpod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultURI is the rootful Podman service socket.
const DefaultURI = "unix:///run/podman/podman.sock"

// apiPrefix selects the libpod v4 endpoints, which Podman 4.3 serves.
const apiPrefix = "/v4.0.0/libpod"

// Client calls one Podman service. It is safe for concurrent use.
type Client struct {
	uri string
	// hc carries calls that answer at once; it has a timeout. stream carries waits, follows and pulls, which
	// last as long as their context allows.
	hc     *http.Client
	stream *http.Client
	// observe, when set, is told of every call: its route (ids and names replaced by {name}), how long the
	// service took to answer (to the response headers for streams) and its error.
	observe func(method, route string, d time.Duration, err error)
}

// Observe sets a function told of every call, for metrics; call it before using the client.
func (c *Client) Observe(f func(method, route string, d time.Duration, err error)) { c.observe = f }

// route is path with the object name replaced, so that it can label a metric: /containers/{name}/wait.
func route(method, path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) >= 3 || (len(parts) == 2 && method == http.MethodDelete) {
		parts[1] = "{name}"
	}
	return "/" + strings.Join(parts, "/")
}

// New returns a client for the service at uri: "unix:///path.sock" (or a bare absolute path),
// "tcp://host:port", or "ssh://[user@]host[:port]/path.sock" (forwarded through the ssh command with -W,
// authenticating with the user's ssh configuration and agent; identity, when set, is passed as -i).
func New(uri, identity string) (*Client, error) {
	dial, err := dialer(uri, identity)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{
		uri:    uri,
		hc:     &http.Client{Transport: tr, Timeout: 2 * time.Minute},
		stream: &http.Client{Transport: tr},
	}, nil
}

// URI returns the service address the client was made for.
func (c *Client) URI() string { return c.uri }

// Error is an answer of the service other than success. Podman sends {"cause", "message", "response"}.
type Error struct {
	Status  int
	Message string
	Op      string // e.g. "create container"
}

func (e *Error) Error() string {
	return fmt.Sprintf("podman %s: %s (HTTP %d)", e.Op, e.Message, e.Status)
}

// IsNotFound reports whether err is the service saying that the object does not exist.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsConflict reports whether err is the service refusing because of the object's state (e.g. already
// started, name in use).
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusConflict || e.Status == http.StatusNotModified)
}

// UnavailableError is a service that could not be reached at all.
type UnavailableError struct {
	URI string
	Err error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("the Podman service at %s cannot be reached: %v", e.URI, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// do sends one request. body, when not nil, is sent as JSON. A status outside 2xx becomes *Error; the caller
// closes the body of a successful response.
func (c *Client) do(ctx context.Context, hc *http.Client, op, method, path string, q url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("podman %s: encoding the request: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	u := "http://d" + apiPrefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("podman %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if c.observe != nil {
		oerr := err
		if err == nil && (resp.StatusCode < 200 || resp.StatusCode >= 300) {
			oerr = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		c.observe(method, route(method, path), time.Since(start), oerr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("podman %s: %w", op, ctx.Err())
		}
		return nil, &UnavailableError{URI: c.uri, Err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readError(op, resp)
}

func readError(op string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var m struct {
		Message string `json:"message"`
		Cause   string `json:"cause"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &m) == nil && m.Message != "" {
		msg = m.Message
	}
	if msg == "" {
		msg = resp.Status
	}
	return &Error{Status: resp.StatusCode, Message: msg, Op: op}
}

// call sends one request and decodes a JSON answer into out (when out is not nil).
func (c *Client) call(ctx context.Context, op, method, path string, q url.Values, body, out any) error {
	resp, err := c.do(ctx, c.hc, op, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("podman %s: decoding the answer: %w", op, err)
	}
	return nil
}

// list sends a list query. Podman (4.3 at least) builds a list by looking each object up after listing
// the names, so an object removed in between fails the whole query with HTTP 500 "no such ...": a list
// never legitimately fails because something is gone, so such an answer is asked again, a few times.
func (c *Client) list(ctx context.Context, op, path string, q url.Values, out any) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = c.call(ctx, op, "GET", path, q, nil, out); !isVanished(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
	return err
}

// isVanished tells the 500 Podman answers a list query when an object went away while it listed.
func isVanished(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusInternalServerError && strings.Contains(e.Message, "no such")
}

// hasLabels tells whether have carries every label of want ("key": "value", or "key": "" for presence).
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}

// keepLabelled keeps the items whose labels carry every label of want. The engine is asked to filter too,
// but Podman 4.3 ORs several label filters of a volume list (a volume carrying any one of them is listed):
// the answer is checked here, the same way for every list.
func keepLabelled[T any](items []T, labels func(*T) map[string]string, want map[string]string) []T {
	out := items[:0]
	for i := range items {
		if hasLabels(labels(&items[i]), want) {
			out = append(out, items[i])
		}
	}
	return out
}

// labelFilters encodes label selectors ("key=value" or "key") as the libpod filters query parameter, with
// the pods (names or ids, any of them) a container list may keep to.
func labelFilters(labels map[string]string, pods ...[]string) string {
	f := map[string][]string{}
	for _, ps := range pods {
		if len(ps) > 0 {
			f["pod"] = append(f["pod"], ps...)
		}
	}
	for k, v := range labels {
		if v == "" {
			f["label"] = append(f["label"], k)
		} else {
			f["label"] = append(f["label"], k+"="+v)
		}
	}
	b, _ := json.Marshal(f)
	return string(b)
}
