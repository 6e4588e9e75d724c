package shim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// FuzzReadSpec reads arbitrary bytes as the shim's spec file: an error, or a spec whose every duration (grace
// period, probe timings, sleep hooks) is one the shim can wait for, never a panic.
func FuzzReadSpec(f *testing.F) {
	grace, huge := int64(5), int64(9223372036)
	for _, s := range []Spec{
		{Argv: []string{"sh", "-c", "echo hi"}},
		{Argv: []string{"/bin/server"}, Ports: []v1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			TerminationGracePeriodSeconds: &grace,
			Lifecycle: &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: huge}},
				PostStart: &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}}},
			LivenessProbe:  &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: -3},
			ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}, InitialDelaySeconds: 1 << 30},
			StartupProbe:   &v1.Probe{ProbeHandler: v1.ProbeHandler{GRPC: &v1.GRPCAction{Port: 9000}}, TerminationGracePeriodSeconds: &huge}},
		{Argv: []string{"x"}, TerminationGracePeriodSeconds: &huge},
	} {
		data, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"argv":[]}`))
	f.Add([]byte(`{"argv":["x"],"lifecycle":{"stopSignal":"SIGNOPE"}}`))
	path := filepath.Join(f.TempDir(), SpecFile)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := ReadSpec(path)
		if err != nil {
			return
		}
		if len(s.Argv) == 0 || s.Argv[0] == "" {
			t.Fatalf("%q: accepted with nothing to run", data)
		}
		if g := seconds(s.GracePeriodSeconds()); g < minGracePeriodSeconds*time.Second {
			t.Fatalf("%q: grace period %s", data, g)
		}
		for _, p := range []*v1.Probe{s.StartupProbe, s.LivenessProbe, s.ReadinessProbe} {
			if p == nil {
				continue
			}
			tm := probeTiming(p)
			if tm.initialDelay < 0 || tm.period <= 0 || tm.timeout <= 0 || tm.successThreshold < 1 || tm.failureThreshold < 1 {
				t.Fatalf("%q: probe timing %+v", data, tm)
			}
			if g := seconds(Spec{TerminationGracePeriodSeconds: p.TerminationGracePeriodSeconds}.GracePeriodSeconds()); g <= 0 {
				t.Fatalf("%q: probe grace period %s", data, g)
			}
		}
		if l := s.Lifecycle; l != nil {
			for _, h := range []*v1.LifecycleHandler{l.PostStart, l.PreStop} {
				if h != nil && h.Sleep != nil && seconds(h.Sleep.Seconds) < 0 {
					t.Fatalf("%q: sleep of %s", data, seconds(h.Sleep.Seconds))
				}
			}
		}
	})
}
