package podman

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
)

// metrics are the backend's own: the latency and errors of its calls to the Podman service, and the
// duration of image pulls. The dispatcher exposes them with a backend label.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	pulls    *prometheus.HistogramVec
	// calls counts every call to the service by operation (method and route): what the live view saves.
	calls *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "interlink_backend", Subsystem: "podman", Name: "engine_request_duration_seconds",
			Help:    "Time the Podman service took to answer a libpod API call (to the response headers for streams).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"method", "route"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "interlink_backend", Subsystem: "podman", Name: "engine_request_errors_total",
			Help: "libpod API calls that failed or were refused.",
		}, []string{"method", "route"}),
		pulls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "interlink_backend", Subsystem: "podman", Name: "image_pull_duration_seconds",
			Help:    "Time taken to make a container's image present, by pull policy and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.05, 3, 9),
		}, []string{"policy", "outcome"}),
	}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "interlink_backend", Name: "engine_calls_total",
		Help: "Calls the backend made to its engine, by operation (for Podman: the libpod method and route).",
	}, []string{"op"})
	m.reg.MustRegister(m.requests, m.errors, m.pulls, m.calls)
	return m
}

func (m *metrics) observe(api *libpod.Client) {
	api.Observe(func(method, route string, d time.Duration, err error) {
		m.requests.WithLabelValues(method, route).Observe(d.Seconds())
		m.calls.WithLabelValues(method + " " + route).Inc()
		if err != nil {
			m.errors.WithLabelValues(method, route).Inc()
		}
	})
}

// Metrics returns the backend's own metrics.
func (b *Backend) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	return b.metrics.reg.Gather()
}
