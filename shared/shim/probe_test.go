package shim

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

func TestProbeTimingDefaults(t *testing.T) {
	got := probeTiming(&v1.Probe{})
	want := timing{period: 10 * time.Second, timeout: time.Second, successThreshold: 1, failureThreshold: 3}
	if got != want {
		t.Errorf("defaults: got %+v, want %+v", got, want)
	}
	got = probeTiming(&v1.Probe{InitialDelaySeconds: 5, PeriodSeconds: 3, TimeoutSeconds: 2, SuccessThreshold: 2, FailureThreshold: 5})
	want = timing{initialDelay: 5 * time.Second, period: 3 * time.Second, timeout: 2 * time.Second, successThreshold: 2, failureThreshold: 5}
	if got != want {
		t.Errorf("explicit: got %+v, want %+v", got, want)
	}
}

func TestFirstProbeAt(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tm := timing{initialDelay: 5 * time.Second}
	if got := firstProbeAt(start, time.Time{}, tm); !got.Equal(start.Add(5 * time.Second)) {
		t.Errorf("no gate: got %v", got)
	}
	if got := firstProbeAt(start, start.Add(2*time.Second), tm); !got.Equal(start.Add(5 * time.Second)) {
		t.Errorf("gate opened before the delay: got %v, want the delay", got)
	}
	if got := firstProbeAt(start, start.Add(9*time.Second), tm); !got.Equal(start.Add(9 * time.Second)) {
		t.Errorf("gate opened after the delay: got %v, want the gate's time", got)
	}
}

func TestVerdictThresholds(t *testing.T) {
	v := verdict{t: timing{successThreshold: 2, failureThreshold: 3}}
	steps := []struct {
		ok, settles bool
	}{
		{false, false}, {false, false}, {false, true}, // third failure in a row settles
		{false, true},                 // and keeps settling while it lasts
		{true, false}, {false, false}, // a success breaks the run of failures
		{true, false}, {true, true}, // two successes in a row settle
		{true, true}, {false, false},
	}
	for i, s := range steps {
		if got := v.observe(s.ok); got != s.settles {
			t.Errorf("step %d (ok=%v): settles=%v, want %v", i, s.ok, got, s.settles)
		}
	}
	one := verdict{t: probeTiming(&v1.Probe{})}
	if !one.observe(true) {
		t.Error("default successThreshold 1: the first success must settle")
	}
}
