package dispatcher

import (
	"context"
	"io"
	"time"

	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// Observer is told about everything worth measuring. It is the seam for metrics: the dispatcher calls it
// and never depends on how it counts. Implementations must be safe for concurrent use and fast.
type Observer interface {
	// RequestStarted is an HTTP request coming in; Request is called when it ends.
	RequestStarted()
	// Request is one finished HTTP request.
	Request(r RequestInfo)
	// BackendUp is a backend becoming available (true) or unavailable (false).
	BackendUp(name string, up bool)
	// BackendRestart is a backend being launched again after it exited or failed to start.
	BackendRestart(name string)
	// BackendCall is one call on a backend's contract; err is nil on success (use backend.KindOf for its kind).
	BackendCall(name, method string, d time.Duration, err error)
	// CapacityReported is what a backend answered to Capacity.
	CapacityReported(name string, c backend.Capacity)
	// Routed is a routing decision for a new pod; rule is "annotation", a rule's name, or "default".
	Routed(rule, backend string)
	// PodCreated is the end of one /create: backend is "none" when no configured backend was chosen; outcome
	// is one of the Outcome* constants.
	PodCreated(backend, outcome string)
	// PodDeleted is the end of one /delete, like PodCreated.
	PodDeleted(backend, outcome string)
	// PodRunning is a pod created through this dispatcher seen Running for the first time, sinceCreate
	// after its create was accepted.
	PodRunning(backend string, sinceCreate time.Duration)
	// JournalWrite is one journal transaction.
	JournalWrite(d time.Duration, err error)
	// Reconciled is one reconciliation of a backend's List with the journal.
	Reconciled(name string, adopted, missing int, err error)
	// ConnectionRefused is a connection closed at once because its client holds
	// limits.max_connections_per_client already; listener is "tcp", "unix" or "metrics".
	ConnectionRefused(listener string)
	// BackendHealth is a backend's engine check (its Capacity every supervision.health_interval) starting to
	// fail (false) or answering again (true).
	BackendHealth(name string, healthy bool)
}

// RequestInfo describes one finished HTTP request.
type RequestInfo struct {
	Route         string // the chi route pattern ("/create"), never a raw path; "other" for unknown paths
	Method        string
	Code          int
	Duration      time.Duration
	RequestBytes  int64 // body bytes read
	ResponseBytes int64 // body bytes written
}

// Outcomes of a create or delete, as PodCreated and PodDeleted report them.
const (
	OutcomeOK          = "ok"          // done (a delete of a pod no backend has included)
	OutcomeDuplicate   = "duplicate"   // a retried create answered from the journal
	OutcomeRejected    = "rejected"    // the request or the pod was refused (4xx)
	OutcomeUnavailable = "unavailable" // the backend was down, or too slow (503)
	OutcomeError       = "error"       // a fault of the backend or of the dispatcher (5xx)
)

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) RequestStarted()                                  {}
func (NopObserver) Request(RequestInfo)                              {}
func (NopObserver) BackendUp(string, bool)                           {}
func (NopObserver) BackendRestart(string)                            {}
func (NopObserver) BackendCall(string, string, time.Duration, error) {}
func (NopObserver) CapacityReported(string, backend.Capacity)        {}
func (NopObserver) Routed(string, string)                            {}
func (NopObserver) PodCreated(string, string)                        {}
func (NopObserver) PodDeleted(string, string)                        {}
func (NopObserver) PodRunning(string, time.Duration)                 {}
func (NopObserver) JournalWrite(time.Duration, error)                {}
func (NopObserver) Reconciled(string, int, int, error)               {}
func (NopObserver) ConnectionRefused(string)                         {}
func (NopObserver) BackendHealth(string, bool)                       {}

// observed times every call of a backend for the Observer.
type observed struct {
	backend.Backend
	name string
	obs  Observer
}

func (o observed) done(method string, start time.Time, err error) {
	o.obs.BackendCall(o.name, method, time.Since(start), err)
}

func (o observed) Describe(ctx context.Context) (backend.Description, error) {
	start := time.Now()
	d, err := o.Backend.Describe(ctx)
	o.done("Describe", start, err)
	return d, err
}

func (o observed) Capacity(ctx context.Context) (backend.Capacity, error) {
	start := time.Now()
	c, err := o.Backend.Capacity(ctx)
	o.done("Capacity", start, err)
	if err == nil {
		o.obs.CapacityReported(o.name, c)
	}
	return c, err
}

func (o observed) Create(ctx context.Context, req backend.CreateRequest) (backend.CreateResult, error) {
	start := time.Now()
	r, err := o.Backend.Create(ctx, req)
	o.done("Create", start, err)
	return r, err
}

func (o observed) Delete(ctx context.Context, req backend.DeleteRequest) error {
	start := time.Now()
	err := o.Backend.Delete(ctx, req)
	o.done("Delete", start, err)
	return err
}

func (o observed) Status(ctx context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	start := time.Now()
	st, err := o.Backend.Status(ctx, pods)
	o.done("Status", start, err)
	return st, err
}

func (o observed) Logs(ctx context.Context, req backend.LogRequest, w io.Writer) error {
	start := time.Now()
	err := o.Backend.Logs(ctx, req, w)
	o.done("Logs", start, err)
	return err
}

func (o observed) List(ctx context.Context) ([]backend.PodRecord, error) {
	start := time.Now()
	l, err := o.Backend.List(ctx)
	o.done("List", start, err)
	return l, err
}

func (o observed) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	start := time.Now()
	m, err := o.Backend.Metrics(ctx)
	o.done("Metrics", start, err)
	return m, err
}
