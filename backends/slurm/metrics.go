package slurm

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// backendMetrics are the SLURM backend's own metrics, which the dispatcher exposes with a backend label.
type backendMetrics struct {
	reg           *prometheus.Registry
	squeueCalls   prometheus.Counter
	squeueErrors  prometheus.Counter
	squeueSeconds prometheus.Histogram
	sbatchCalls   prometheus.Counter
	sbatchErrors  prometheus.Counter
	scancelCalls  prometheus.Counter
	sinfoCalls    prometheus.Counter
}

func newBackendMetrics() *backendMetrics {
	m := &backendMetrics{
		reg: prometheus.NewRegistry(),
		squeueCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_squeue_invocations_total", Help: "squeue runs (one per status batch, plus log follows and deletes)."}),
		squeueErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_squeue_errors_total", Help: "squeue runs that failed."}),
		squeueSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "interlink_backend_slurm_squeue_duration_seconds", Help: "How long one squeue --json run took.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		sbatchCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_sbatch_invocations_total", Help: "sbatch runs (job submissions)."}),
		sbatchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_sbatch_errors_total", Help: "sbatch runs that failed."}),
		scancelCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_scancel_invocations_total", Help: "scancel runs."}),
		sinfoCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_sinfo_invocations_total", Help: "sinfo runs (capacity)."}),
	}
	m.reg.MustRegister(m.squeueCalls, m.squeueErrors, m.squeueSeconds, m.sbatchCalls, m.sbatchErrors,
		m.scancelCalls, m.sinfoCalls)
	return m
}

// Metrics implements backend.Backend.
func (b *Backend) Metrics(context.Context) ([]*dto.MetricFamily, error) {
	return b.metrics.reg.Gather()
}

// SqueueInvocations returns how many times squeue has run, for benchmarks and tests.
func (b *Backend) SqueueInvocations() int64 {
	var m dto.Metric
	_ = b.metrics.squeueCalls.Write(&m)
	return int64(m.GetCounter().GetValue())
}
