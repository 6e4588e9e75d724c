package docker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the backend's own series, handed to the dispatcher through Metrics.
type metrics struct {
	reg          *prometheus.Registry
	engineCalls  *prometheus.HistogramVec
	engineErrors *prometheus.CounterVec
	pulls        *prometheus.HistogramVec
	// calls counts every Engine API call by op, whatever made it: the cost of the backend's answers.
	calls *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		engineCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "interlink_backend", Subsystem: "docker", Name: "engine_request_duration_seconds",
			Help:    "Duration of Docker Engine API calls made by the backend, by call.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"call"}),
		engineErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "interlink_backend", Subsystem: "docker", Name: "engine_request_errors_total",
			Help: "Docker Engine API calls that failed, by call.",
		}, []string{"call"}),
		pulls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "interlink_backend", Subsystem: "docker", Name: "image_pull_duration_seconds",
			Help:    "Duration of image pulls, by outcome (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 10),
		}, []string{"outcome"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "interlink_backend", Name: "engine_calls_total",
			Help: "Docker Engine API calls made by the backend, by operation (container_list, container_inspect...).",
		}, []string{"op"}),
	}
	m.reg.MustRegister(m.engineCalls, m.engineErrors, m.pulls, m.calls)
	return m
}

// observe records one engine call that started at start and ended with err.
func (m *metrics) observe(call string, start time.Time, err error) {
	m.engineCalls.WithLabelValues(call).Observe(time.Since(start).Seconds())
	if err != nil {
		m.engineErrors.WithLabelValues(call).Inc()
	}
}

func (m *metrics) gather() ([]*dto.MetricFamily, error) { return m.reg.Gather() }

// count records one engine call of op.
func (m *metrics) count(op string) { m.calls.WithLabelValues(op).Inc() }

// callCount is how many engine calls of the given ops (all of them with none) were made so far.
func (m *metrics) callCount(ops ...string) float64 {
	mfs, err := m.reg.Gather()
	if err != nil {
		return 0
	}
	want := map[string]bool{}
	for _, op := range ops {
		want[op] = true
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "interlink_backend_engine_calls_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "op" && (len(want) == 0 || want[l.GetValue()]) {
					n += mt.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}
