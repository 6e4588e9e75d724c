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
	sbatchSeconds prometheus.Histogram
	createSeconds prometheus.Histogram
	scancelCalls  prometheus.Counter
	// scancelSeconds, beside sbatchSeconds, shows how much of a delete is SLURM's.
	scancelSeconds prometheus.Histogram
	sinfoCalls     prometheus.Counter
	squeueShared   prometheus.Counter
	// engineCalls counts every SLURM command run, by command (squeue, sbatch, scancel, sinfo), under the name
	// the other backends use for their engine calls.
	engineCalls *prometheus.CounterVec
}

func newBackendMetrics() *backendMetrics {
	m := &backendMetrics{
		reg: prometheus.NewRegistry(),
		squeueCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_squeue_invocations_total", Help: "squeue runs (status, delete and log follows share one run for squeue_max_age)."}),
		squeueShared: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_squeue_shared_total", Help: "Queue reads answered by a squeue run that another caller started."}),
		engineCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "interlink_backend_engine_calls_total", Help: "SLURM commands run, by command (op)."}, []string{"op"}),
		squeueErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_squeue_errors_total", Help: "squeue runs that failed."}),
		squeueSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "interlink_backend_slurm_squeue_duration_seconds", Help: "How long one squeue --json run took.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		sbatchCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_sbatch_invocations_total", Help: "sbatch runs (job submissions)."}),
		sbatchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_sbatch_errors_total", Help: "sbatch runs that failed."}),
		sbatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "interlink_backend_slurm_sbatch_duration_seconds", Help: "How long one sbatch run took (most of a create).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		createSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "interlink_backend_slurm_create_duration_seconds", Help: "How long a Create that submitted a job took in the backend, sbatch included.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		scancelCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_scancel_invocations_total", Help: "scancel runs."}),
		scancelSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "interlink_backend_slurm_scancel_duration_seconds", Help: "How long one scancel run took (most of a delete of a job that never started).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		sinfoCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "interlink_backend_slurm_sinfo_invocations_total", Help: "sinfo runs (capacity)."}),
	}
	m.reg.MustRegister(m.squeueCalls, m.squeueErrors, m.squeueSeconds, m.sbatchCalls, m.sbatchErrors, m.sbatchSeconds, m.createSeconds,
		m.scancelCalls, m.scancelSeconds, m.sinfoCalls, m.squeueShared, m.engineCalls)
	for _, op := range []string{"squeue", "sbatch", "scancel", "sinfo"} {
		m.engineCalls.WithLabelValues(op) // every command's series from the start, zero until it runs
	}
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
