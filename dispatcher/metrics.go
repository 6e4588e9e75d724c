package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
)

// metricsNamespace starts every series of the dispatcher itself.
const metricsNamespace = "interlink_dispatcher"

// backendMetricsPrefix starts every series gathered from a backend process: whatever a backend names its
// series, they can never collide with the dispatcher's own (interlink_dispatcher_*, go_*, process_*).
const backendMetricsPrefix = "interlink_backend_"

// podPhases are the phases interlink_dispatcher_pods reports, each always present.
var podPhases = []v1.PodPhase{v1.PodPending, v1.PodRunning, v1.PodSucceeded, v1.PodFailed}

// BuildInfo is what interlink_dispatcher_build_info says of the binary (what its --version prints).
type BuildInfo = buildinfo.Info

// ReadBuildInfo completes version and commit (as set with -ldflags -X, possibly empty) from what the Go
// toolchain recorded in the binary: see buildinfo.Read.
func ReadBuildInfo(v, commit string) BuildInfo { return buildinfo.Read(v, commit) }

// Metrics is the Observer that counts for Prometheus, and the /metrics handler. Besides what it is told,
// it reads at scrape time the pods by phase (from the journal and the last known statuses) and the
// backends' own metrics (through the contract's Metrics call).
type Metrics struct {
	reg            *prometheus.Registry
	backends       []string // the enabled backends, in config order
	backendTimeout time.Duration
	log            *slog.Logger
	server         atomic.Pointer[Server]
	all            []prometheus.Collector // everything registered, for Describe

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpInFlight prometheus.Gauge
	httpReqSize  *prometheus.HistogramVec
	httpRespSize *prometheus.HistogramVec

	backendUp          *prometheus.GaugeVec
	backendRestarts    *prometheus.CounterVec
	backendLastRestart *prometheus.GaugeVec
	rpcDuration        *prometheus.HistogramVec
	rpcErrors          *prometheus.CounterVec

	podCreates      *prometheus.CounterVec
	podDeletes      *prometheus.CounterVec
	createToRunning *prometheus.HistogramVec

	capMu   sync.Mutex // a capacity report replaces a backend's series as a whole
	capCPU  *prometheus.GaugeVec
	capMem  *prometheus.GaugeVec
	capPods *prometheus.GaugeVec
	capAcc  *prometheus.GaugeVec

	routed          *prometheus.CounterVec
	journalWrites   prometheus.Histogram
	journalErrors   prometheus.Counter
	reconciliations *prometheus.CounterVec
	reconciledPods  *prometheus.CounterVec
	connRefused     *prometheus.CounterVec
	backendDegraded *prometheus.GaugeVec
}

// NewMetrics registers every series of the dispatcher configured by cfg. The backends' series start at
// zero (up 0, no restarts) so that rates and alerts work from the first scrape.
func NewMetrics(cfg Config, build BuildInfo, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.Default()
	}
	m := &Metrics{reg: prometheus.NewRegistry(), backendTimeout: cfg.Metrics.BackendTimeout, log: log}
	if m.backendTimeout <= 0 {
		m.backendTimeout = DefaultConfig().Metrics.BackendTimeout
	}
	for _, b := range cfg.Backends {
		if b.IsEnabled() {
			m.backends = append(m.backends, b.Name)
		}
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metricsNamespace, Name: name, Help: help, Buckets: buckets}, labels)
	}
	// Latencies from a millisecond (a status batch on a local engine) to two minutes (interLink's limit).
	latency := []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	sizes := prometheus.ExponentialBuckets(64, 4, 10) // 64 B to 16 MiB: limits.max_body_bytes is 10 MiB

	m.httpRequests = counter("http_requests_total", "HTTP requests answered, by route pattern, method and status code.", "route", "method", "code")
	m.httpDuration = histogram("http_request_duration_seconds", "Time to answer an HTTP request, by route pattern (a followed log counts until it ends).", latency, "route")
	m.httpInFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: "http_requests_in_flight", Help: "HTTP requests being answered now."})
	m.httpReqSize = histogram("http_request_size_bytes", "Request body sizes, by route pattern.", sizes, "route")
	m.httpRespSize = histogram("http_response_size_bytes", "Response body sizes, by route pattern.", sizes, "route")

	m.backendUp = gauge("backend_up", "1 while the backend process is running and has described itself, else 0.", "backend")
	m.backendDegraded = gauge("backend_degraded", "1 while the backend process is up but its engine does not answer the health check (Capacity every supervision.health_interval), else 0.", "backend")
	m.backendRestarts = counter("backend_restarts_total", "Launches of a backend after it exited or failed to start.", "backend")
	m.backendLastRestart = gauge("backend_last_restart_timestamp_seconds", "Unix time of the backend's last restart (0: never restarted).", "backend")
	m.rpcDuration = histogram("backend_rpc_duration_seconds", "Duration of calls on a backend's contract, by method.", latency, "backend", "method")
	m.rpcErrors = counter("backend_rpc_errors_total",
		"Failed calls on a backend's contract, by method and kind (invalid, not_found, unavailable, internal, timeout, canceled).", "backend", "method", "kind")

	m.podCreates = counter("pod_creates_total", "Pod creates answered, by backend (none when no configured backend was chosen) and outcome (ok, duplicate, rejected, unavailable, error).", "backend", "outcome")
	m.podDeletes = counter("pod_deletes_total", "Pod deletes answered, by backend (none when no configured backend was located) and outcome (ok, rejected, unavailable, error).", "backend", "outcome")
	m.createToRunning = histogram("pod_create_to_running_seconds", "Time from an accepted create to the first status showing the pod Running, once per pod.",
		[]float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600}, "backend")

	m.capCPU = gauge("backend_capacity_cpu_cores", "CPU the backend last reported available, in cores.", "backend")
	m.capMem = gauge("backend_capacity_memory_bytes", "Memory the backend last reported available.", "backend")
	m.capPods = gauge("backend_capacity_pods", "Pods the backend last reported it accepts.", "backend")
	m.capAcc = gauge("backend_capacity_accelerators", "Accelerators the backend last reported available, by extended resource name.", "backend", "resource")

	m.routed = counter("routing_decisions_total", "Backends chosen for new pods, by rule (annotation, a rule's name, or default).", "rule", "backend")
	m.journalWrites = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metricsNamespace, Name: "journal_write_duration_seconds",
		Help: "Duration of journal transactions (each is synced to disk).", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}})
	m.journalErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "journal_write_errors_total", Help: "Journal transactions that failed."})
	m.reconciliations = counter("reconciliations_total", "Reconciliations of the journal with a backend's pods, by outcome (ok, error).", "backend", "outcome")
	m.reconciledPods = counter("reconciled_pods_total", "Pods reconciliation adopted (found on the backend, not in the journal) or found missing (journaled, gone from the backend).", "backend", "result")

	m.connRefused = counter("connections_refused_total", "Connections closed at once because their client already held limits.max_connections_per_client, by listener (tcp, unix, metrics).", "listener")

	buildInfo := gauge("build_info", "Always 1; the labels say which build runs.", "version", "commit", "goversion")
	buildInfo.WithLabelValues(build.Version, build.Commit, build.GoVersion).Set(1)

	m.all = []prometheus.Collector{
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo,
		m.httpRequests, m.httpDuration, m.httpInFlight, m.httpReqSize, m.httpRespSize,
		m.backendUp, m.backendDegraded, m.backendRestarts, m.backendLastRestart, m.rpcDuration, m.rpcErrors,
		m.podCreates, m.podDeletes, m.createToRunning,
		m.capCPU, m.capMem, m.capPods, m.capAcc,
		m.routed, m.journalWrites, m.journalErrors, m.reconciliations, m.reconciledPods, m.connRefused,
		podsCollector{m},
	}
	m.reg.MustRegister(m.all...)
	for _, l := range []string{"tcp", "unix", "metrics"} {
		m.connRefused.WithLabelValues(l)
	}
	for _, b := range m.backends {
		m.backendUp.WithLabelValues(b).Set(0)
		m.backendDegraded.WithLabelValues(b).Set(0)
		m.backendRestarts.WithLabelValues(b)
		m.backendLastRestart.WithLabelValues(b)
		for _, o := range []string{OutcomeOK, OutcomeDuplicate, OutcomeRejected, OutcomeUnavailable, OutcomeError} {
			m.podCreates.WithLabelValues(b, o)
			if o != OutcomeDuplicate {
				m.podDeletes.WithLabelValues(b, o)
			}
		}
		m.reconciliations.WithLabelValues(b, "ok")
		m.reconciliations.WithLabelValues(b, "error")
		m.reconciledPods.WithLabelValues(b, "adopted")
		m.reconciledPods.WithLabelValues(b, "missing")
	}
	return m
}

// Attach gives the metrics the server whose journal and backends they read at scrape time.
func (m *Metrics) Attach(s *Server) { m.server.Store(s) }

// Handler serves the Prometheus exposition: the dispatcher's series, then every backend's.
func (m *Metrics) Handler() http.Handler {
	g := prometheus.Gatherers{m.reg, prometheus.GathererFunc(m.gatherBackends)}
	// A backend whose series cannot be merged must not cost the dispatcher's own: serve what gathered.
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ErrorLog: promLogger{m.log}})
}

// Describe sends the descriptions of every series of the dispatcher itself (not the backends').
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all {
		c.Describe(ch)
	}
}

type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) {
	p.l.Warn("some series could not be gathered for /metrics", "err", fmt.Sprint(v...))
}

// httpMethod bounds the method label: a client may send any token as a method.
func httpMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut, http.MethodHead, http.MethodPatch, http.MethodOptions:
		return m
	}
	return "other"
}

// errorKind is the kind label of a failed backend call. Cancellation and deadlines are told apart from
// the backend's own unavailability: a log follow ended by the client is no fault of the backend.
func errorKind(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return backend.KindOf(err).String()
}

// RequestStarted implements Observer.
func (m *Metrics) RequestStarted() { m.httpInFlight.Inc() }

// Request implements Observer.
func (m *Metrics) Request(r RequestInfo) {
	m.httpInFlight.Dec()
	m.httpRequests.WithLabelValues(r.Route, httpMethod(r.Method), strconv.Itoa(r.Code)).Inc()
	m.httpDuration.WithLabelValues(r.Route).Observe(r.Duration.Seconds())
	m.httpReqSize.WithLabelValues(r.Route).Observe(float64(r.RequestBytes))
	m.httpRespSize.WithLabelValues(r.Route).Observe(float64(r.ResponseBytes))
}

// BackendUp implements Observer. A backend going down loses its capacity series: the ping leaves it out
// too, and a stale capacity would mislead.
func (m *Metrics) BackendUp(name string, up bool) {
	m.backendDegraded.WithLabelValues(name).Set(0) // a new process is checked afresh; a down one is not degraded
	if up {
		m.backendUp.WithLabelValues(name).Set(1)
		return
	}
	m.backendUp.WithLabelValues(name).Set(0)
	m.capMu.Lock()
	defer m.capMu.Unlock()
	m.dropCapacity(name)
}

// BackendRestart implements Observer.
func (m *Metrics) BackendRestart(name string) {
	m.backendRestarts.WithLabelValues(name).Inc()
	m.backendLastRestart.WithLabelValues(name).SetToCurrentTime()
}

// BackendCall implements Observer.
func (m *Metrics) BackendCall(name, method string, d time.Duration, err error) {
	m.rpcDuration.WithLabelValues(name, method).Observe(d.Seconds())
	if err != nil {
		m.rpcErrors.WithLabelValues(name, method, errorKind(err)).Inc()
	}
}

// CapacityReported implements Observer: the report replaces the backend's capacity series, so that a
// resource it stopped reporting disappears rather than stays at its old value.
func (m *Metrics) CapacityReported(name string, c backend.Capacity) {
	m.capMu.Lock()
	defer m.capMu.Unlock()
	m.dropCapacity(name)
	if c.CPUMilli != nil {
		m.capCPU.WithLabelValues(name).Set(float64(*c.CPUMilli) / 1000)
	}
	if c.MemoryBytes != nil {
		m.capMem.WithLabelValues(name).Set(float64(*c.MemoryBytes))
	}
	if c.Pods != nil {
		m.capPods.WithLabelValues(name).Set(float64(*c.Pods))
	}
	for res, n := range c.Accelerators {
		m.capAcc.WithLabelValues(name, res).Set(float64(n))
	}
}

func (m *Metrics) dropCapacity(name string) {
	m.capCPU.DeleteLabelValues(name)
	m.capMem.DeleteLabelValues(name)
	m.capPods.DeleteLabelValues(name)
	m.capAcc.DeletePartialMatch(prometheus.Labels{"backend": name})
}

// Routed implements Observer.
func (m *Metrics) Routed(rule, backendName string) { m.routed.WithLabelValues(rule, backendName).Inc() }

// PodCreated implements Observer.
func (m *Metrics) PodCreated(backendName, outcome string) {
	m.podCreates.WithLabelValues(backendName, outcome).Inc()
}

// PodDeleted implements Observer.
func (m *Metrics) PodDeleted(backendName, outcome string) {
	m.podDeletes.WithLabelValues(backendName, outcome).Inc()
}

// PodRunning implements Observer.
func (m *Metrics) PodRunning(backendName string, sinceCreate time.Duration) {
	m.createToRunning.WithLabelValues(backendName).Observe(sinceCreate.Seconds())
}

// JournalWrite implements Observer.
func (m *Metrics) JournalWrite(d time.Duration, err error) {
	m.journalWrites.Observe(d.Seconds())
	if err != nil {
		m.journalErrors.Inc()
	}
}

// Reconciled implements Observer.
func (m *Metrics) Reconciled(name string, adopted, missing int, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.reconciliations.WithLabelValues(name, outcome).Inc()
	m.reconciledPods.WithLabelValues(name, "adopted").Add(float64(adopted))
	m.reconciledPods.WithLabelValues(name, "missing").Add(float64(missing))
}

var _ Observer = (*Metrics)(nil)

// podsCollector reads the pods by backend and phase, and the journal's size, at scrape time: the journal
// and the last known statuses are the truth, so there is no count to drift.
type podsCollector struct{ m *Metrics }

var (
	podsDesc = prometheus.NewDesc(metricsNamespace+"_pods",
		"Pods in the journal, by backend and phase (from their last known status; Pending until one is known).", []string{"backend", "phase"}, nil)
	journalPodsDesc = prometheus.NewDesc(metricsNamespace+"_journal_pods", "Entries in the journal (pods this dispatcher routes).", nil, nil)
)

func (c podsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- podsDesc
	ch <- journalPodsDesc
}

func (c podsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.server.Load()
	if s == nil {
		return
	}
	counts, total, err := s.core.podCounts()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(podsDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(journalPodsDesc, prometheus.GaugeValue, float64(total))
	names := append([]string(nil), c.m.backends...)
	for b := range counts {
		if !slices.Contains(names, b) {
			names = append(names, b) // a backend disabled since: its pods are still journaled
		}
	}
	for _, b := range names {
		for _, ph := range podPhases {
			ch <- prometheus.MustNewConstMetric(podsDesc, prometheus.GaugeValue, float64(counts[b][ph]), b, string(ph))
		}
	}
}

// gatherBackends asks every backend that is up for its own metrics, all at once, each within
// metrics.backend_timeout, and returns them renamed under interlink_backend_ with a backend label. A
// backend that is down or too slow contributes nothing to this scrape.
func (m *Metrics) gatherBackends() ([]*dto.MetricFamily, error) {
	s := m.server.Load()
	if s == nil {
		return nil, nil
	}
	names, got := askEveryBackend(context.Background(), s.core.backends, m.backendTimeout,
		func(ctx context.Context, name string, b backend.Backend) []*dto.MetricFamily {
			fams, err := b.Metrics(ctx)
			if err != nil {
				m.log.Debug("backend metrics left out of this scrape", "backend", name, "err", err)
				return nil
			}
			return fams
		})
	return mergeBackendFamilies(names, got, m.log), nil
}

// mergeBackendFamilies renames and labels the backends' families and merges same-named ones. A family
// whose type differs from the first one of its name is left out (Prometheus cannot hold both).
func mergeBackendFamilies(names []string, got [][]*dto.MetricFamily, log *slog.Logger) []*dto.MetricFamily {
	byName := map[string]*dto.MetricFamily{}
	for i, fams := range got {
		for _, f := range fams {
			if f == nil || f.GetName() == "" || f.Type == nil {
				continue
			}
			name := BackendMetricName(f.GetName())
			out := byName[name]
			if out == nil {
				out = &dto.MetricFamily{Name: proto.String(name), Help: f.Help, Type: f.Type, Unit: f.Unit}
				if out.GetHelp() == "" {
					out.Help = proto.String("Gathered from a backend process.")
				}
				byName[name] = out
			} else if out.GetType() != f.GetType() {
				log.Debug("backend metric left out: another backend exports it with another type", "backend", names[i], "metric", name)
				continue
			}
			for _, mt := range f.Metric {
				c := proto.Clone(mt).(*dto.Metric)
				c.Label = withBackendLabel(c.Label, names[i])
				out.Metric = append(out.Metric, c)
			}
		}
	}
	keys := make([]string, 0, len(byName))
	for k := range byName {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*dto.MetricFamily, 0, len(keys))
	for _, k := range keys {
		out = append(out, byName[k])
	}
	return out
}

// BackendMetricName is the name under which the dispatcher exposes a backend's series name n: n itself if
// it starts with interlink_backend_, interlink_dispatcher_X as interlink_backend_X, anything else prefixed
// with interlink_backend_.
func BackendMetricName(n string) string {
	switch {
	case strings.HasPrefix(n, backendMetricsPrefix):
		return n
	case strings.HasPrefix(n, metricsNamespace+"_"):
		return backendMetricsPrefix + strings.TrimPrefix(n, metricsNamespace+"_")
	default:
		return backendMetricsPrefix + n
	}
}

// withBackendLabel sets backend=name on a series (replacing a backend label of its own) and keeps the
// labels sorted, as the exposition requires.
func withBackendLabel(labels []*dto.LabelPair, name string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(labels)+1)
	for _, l := range labels {
		if l.GetName() != "backend" {
			out = append(out, l)
		}
	}
	out = append(out, &dto.LabelPair{Name: proto.String("backend"), Value: proto.String(name)})
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// ConnectionRefused implements Observer.
func (m *Metrics) ConnectionRefused(listener string) { m.connRefused.WithLabelValues(listener).Inc() }

// BackendHealth implements Observer.
func (m *Metrics) BackendHealth(name string, healthy bool) {
	v := 1.0
	if healthy {
		v = 0
	}
	m.backendDegraded.WithLabelValues(name).Set(v)
}
