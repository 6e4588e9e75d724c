package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// Handler is the whole HTTP surface: the interLink plugin API as interLink 0.2 to 0.6.2 and later send it,
// and the admin API (admin.go), behind the access control of access.go.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.logRequests, s.access.middleware, s.recoverer)

	r.Post("/create", s.create)
	r.Get("/status", s.status)
	r.Post("/status", s.status)
	r.Post("/delete", s.delete)
	r.Delete("/delete", s.delete)
	r.Get("/getLogs", s.logs)
	r.Post("/getLogs", s.logs)
	s.opsRoutes(r)
	r.Get("/openapi.json", s.openapiDocument)
	s.adminRoutes(r)

	if s.routes != nil {
		s.routes(r)
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		httpError(w, r, http.StatusNotFound, fmt.Sprintf("%s is not an interLink plugin endpoint; use /create, /status, /delete or /getLogs (or /api/v1/pods, /api/v1/backends, /healthz, /readyz, /metrics, /openapi.json)", r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		httpError(w, r, http.StatusMethodNotAllowed, fmt.Sprintf("%s does not accept %s", r.URL.Path, r.Method))
	})
	return r
}

// SessionHeader is the header interLink sets on every call, e.g. "CreatePod#12".
const SessionHeader = "InterLink-Http-Session"

// reqInfo is filled by the handlers for the request log.
type reqInfo struct {
	uid, namespace, name string // the pod, when the request is about one
	backend              string
	errMsg               string
	remote               string // the client's address, on a refusal by access control
}

// setPod names the pod the request is about, for the request log.
func (i *reqInfo) setPod(uid, namespace, name string) {
	i.uid, i.namespace, i.name = uid, namespace, name
}

type reqInfoKey struct{}

func info(r *http.Request) *reqInfo {
	if i, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// logRequests logs one line per request, with interLink's session header, the pod and the backend, and
// tells the observer about it.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.obs.RequestStarted()
		ri := &reqInfo{}
		body := &countingReader{rc: r.Body}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = body
		}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri)))
		code := ww.Status()
		if code == 0 {
			code = http.StatusOK
		}
		d := time.Since(start)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "other"
		}
		s.obs.Request(RequestInfo{Route: route, Method: r.Method, Code: code, Duration: d,
			RequestBytes: body.n, ResponseBytes: int64(ww.BytesWritten())})
		level := slog.LevelInfo
		switch {
		case slices.Contains(opsPaths, r.URL.Path) && code != http.StatusUnauthorized && code != http.StatusForbidden:
			// Scrapes and probes come every few seconds, and a /readyz 503 says what the supervisor has
			// already logged once (a backend down, degraded or misconfigured).
			level = slog.LevelDebug
		case code >= 500:
			level = slog.LevelError
		case code >= 400:
			level = slog.LevelWarn
		case r.URL.Path == "/status":
			// The virtual kubelet asks the status of every pod every few seconds, and the ping comes every
			// 30 s: at INFO a site of a few thousand pods would log hundreds of lines a second. A status
			// changes nothing; the request metrics count them.
			level = slog.LevelDebug
		case strings.HasPrefix(r.URL.Path, adminPrefix):
			level = slog.LevelDebug // a watching client asks every second or two
		}
		if !s.log.Enabled(r.Context(), level) {
			return
		}
		attrs := []any{"session", r.Header.Get(SessionHeader), "method", r.Method, "path", r.URL.Path,
			"status", code, "duration", d, "bytes", ww.BytesWritten()}
		if ri.uid != "" {
			attrs = append(attrs, "pod_uid", ri.uid, "namespace", ri.namespace, "name", ri.name)
		}
		if ri.backend != "" {
			attrs = append(attrs, "backend", ri.backend)
		}
		if ri.errMsg != "" {
			attrs = append(attrs, "err", ri.errMsg)
		}
		if ri.remote != "" {
			attrs = append(attrs, "remote", ri.remote)
		}
		s.log.Log(r.Context(), level, "request", attrs...)
	})
}

// countingReader counts the body bytes a handler reads, for the request size metric: Content-Length is
// absent from chunked requests.
type countingReader struct {
	rc io.ReadCloser
	n  int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }

// recoverer turns a panic in a handler into a 500 with a sentence and the stack in the log, so that one
// bad request never takes the dispatcher down.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if rec == http.ErrAbortHandler {
				panic(rec)
			}
			s.log.Error("handler panic", "path", r.URL.Path, "panic", rec, "stack", string(debug.Stack()))
			httpError(w, r, http.StatusInternalServerError, "the dispatcher failed on this request (a bug, logged with its stack); retry, and report it if it persists")
		}()
		next.ServeHTTP(w, r)
	})
}

// httpError answers a short sentence saying what to fix; interLink shows it as the pod's failure message.
// Under the admin API's prefix the sentence is the JSON object {"error": msg}, as its clients read it.
func httpError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	info(r).errMsg = msg
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(struct {
			Error string `json:"error"`
		}{msg})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// backendError answers err of a backend with the status its kind maps to.
func backendError(w http.ResponseWriter, r *http.Request, err error) {
	httpError(w, r, statusOf(err), err.Error())
}

func statusOf(err error) int {
	var re *RouteError
	if errors.As(err, &re) || IsRequestError(err) {
		return http.StatusBadRequest
	}
	switch backend.KindOf(err) {
	case backend.KindInvalid:
		return http.StatusUnprocessableEntity
	case backend.KindNotFound:
		return http.StatusNotFound
	case backend.KindUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// readBody reads the whole body within limits.max_body_bytes. On failure it has answered (413 or 400).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		httpError(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf(
			"the request body is larger than the dispatcher's limit of %d bytes; shrink the pod (large configMaps or secrets?) or raise limits.max_body_bytes",
			mbe.Limit))
		return nil, false
	case err != nil:
		httpError(w, r, http.StatusBadRequest, fmt.Sprintf("cannot read the request body: %v", err))
		return nil, false
	}
	bodyRead(w)
	return body, true
}

// decodeError turns a JSON error into a sentence that says where the body is wrong.
func decodeError(what string, body []byte, err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "the top level"
		}
		return fmt.Sprintf("the body is not a valid %s: %s holds a JSON %s where %s is expected", what, field, te.Value, jsonKind(te.Type.Kind().String()))
	case errors.As(err, &se) && se.Offset >= int64(len(body)):
		return fmt.Sprintf("the body is cut short; send a complete %s", what)
	case errors.As(err, &se):
		return fmt.Sprintf("the body is not valid JSON (%v at byte %d); send a %s", se, se.Offset, what)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("the body is cut short; send a complete %s", what)
	default:
		return fmt.Sprintf("the body is not a valid %s: %v", what, err)
	}
}

func jsonKind(goKind string) string {
	switch {
	case goKind == "struct" || goKind == "map":
		return "an object"
	case goKind == "slice" || goKind == "array":
		return "an array"
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "true or false"
	case strings.HasPrefix(goKind, "int") || strings.HasPrefix(goKind, "uint") || strings.HasPrefix(goKind, "float"):
		return "a number"
	default:
		return goKind
	}
}

// firstByte returns the first non-space byte of a JSON body, 0 for an empty one.
func firstByte(body []byte) byte {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}
