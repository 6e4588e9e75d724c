package conformance

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
)

// capacity checks what the ping is built from: a capacity the backend cannot tell is left out (nil), never
// reported as zero, which would drain the virtual node.
func (h *harness) capacity(t *testing.T) {
	c, err := h.b.Capacity(h.ctx(t))
	if err != nil {
		t.Fatalf("Capacity: %v", err)
	}
	for name, v := range map[string]*int64{"CPUMilli": c.CPUMilli, "MemoryBytes": c.MemoryBytes, "Pods": c.Pods} {
		if v != nil && *v <= 0 {
			t.Errorf("Capacity reports %s = %d: leave a capacity the backend cannot tell out (nil) instead", name, *v)
		}
	}
	for name, n := range c.Accelerators {
		if name == "" || n < 0 {
			t.Errorf("Capacity reports accelerator %q = %d", name, n)
		}
	}
	for i, taint := range c.Taints {
		switch taint.Effect {
		case v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute:
		default:
			t.Errorf("taint %d (%s) has effect %q, not a Kubernetes taint effect", i, taint.Key, taint.Effect)
		}
		if taint.Key == "" {
			t.Errorf("taint %d has no key", i)
		}
	}
}

// metrics checks that the backend's metric families can be exposed beside the dispatcher's: named, typed,
// each name once, and without a "backend" label, which the dispatcher adds to each.
func (h *harness) metrics(t *testing.T) {
	mfs, err := h.b.Metrics(h.ctx(t))
	if err != nil {
		t.Fatalf("Metrics: %v", err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		if name == "" || mf.Type == nil {
			t.Errorf("metric family %q has no name or no type", name)
			continue
		}
		if seen[name] {
			t.Errorf("metric family %q comes twice", name)
		}
		seen[name] = true
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "backend" {
					t.Errorf("metric %q has a label \"backend\", which the dispatcher adds itself", name)
				}
			}
			if !hasValue(mf.GetType(), m) {
				t.Errorf("a metric of family %q (%v) has no value of its type", name, mf.GetType())
			}
		}
	}
}

func hasValue(typ dto.MetricType, m *dto.Metric) bool {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.Counter != nil
	case dto.MetricType_GAUGE:
		return m.Gauge != nil
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return m.Histogram != nil
	case dto.MetricType_SUMMARY:
		return m.Summary != nil
	default:
		return m.Untyped != nil
	}
}
