package kubernetes

import (
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the backend's own series, handed to the dispatcher through Metrics.
type metrics struct {
	reg          *prometheus.Registry
	calls        *prometheus.HistogramVec
	errors       *prometheus.CounterVec
	statusServed *prometheus.CounterVec
	watchErrors  prometheus.Counter
	// followRetries counts followed logs the remote node ended empty before the container ended.
	followRetries prometheus.Counter
	httpRequests  *prometheus.CounterVec
	requests      atomic.Int64
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "interlink_backend", Subsystem: "kubernetes", Name: "api_request_duration_seconds",
			Help:    "Duration of the requests to the remote Kubernetes API server made by the backend, by call.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"call"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "interlink_backend", Subsystem: "kubernetes", Name: "api_request_errors_total",
			Help: "Requests to the remote Kubernetes API server that failed, by call.",
		}, []string{"call"}),
		statusServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "interlink_backend", Subsystem: "kubernetes", Name: "pod_statuses_total",
			Help: "Pod statuses answered, by source: watch (the informer's cache, no request), get (a pod created a moment ago and not yet seen by the watch), absent (the remote cluster has no such pod).",
		}, []string{"source"}),
		watchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "interlink_backend", Subsystem: "kubernetes", Name: "watch_errors_total",
			Help: "Failures of the watch of remote pods (each restarts it).",
		}),
		followRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "interlink_backend", Subsystem: "kubernetes", Name: "log_follow_retries_total",
			Help: "Followed logs the remote node ended at once, empty, while the remote pod showed the container not ended (interLink's virtual kubelet before its backend started it): each followed again once the pod's status changed.",
		}),
	}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "interlink_backend", Subsystem: "kubernetes", Name: "api_requests_total",
		Help: "HTTP requests sent to the remote Kubernetes API server, by method (a watch counts once, when it starts).",
	}, []string{"method"})
	for _, s := range []string{"watch", "get", "absent"} {
		m.statusServed.WithLabelValues(s)
	}
	m.httpRequests.WithLabelValues(http.MethodGet)
	m.reg.MustRegister(m.calls, m.errors, m.statusServed, m.watchErrors, m.followRetries, m.httpRequests)
	return m
}

// observe records one API call that started at start and ended with err.
func (m *metrics) observe(call string, start time.Time, err error) {
	m.calls.WithLabelValues(call).Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(call).Inc()
	}
}

func (m *metrics) gather() ([]*dto.MetricFamily, error) { return m.reg.Gather() }

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

// countRequests wraps the client's transport to count every request it sends.
func (m *metrics) countRequests(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		m.requests.Add(1)
		m.httpRequests.WithLabelValues(r.Method).Inc()
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
