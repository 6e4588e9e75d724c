package docker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

func TestProbes(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	server := func(name string, readyPort int) v1.Container {
		return v1.Container{Name: name, Image: labtest.PythonImage, ImagePullPolicy: v1.PullIfNotPresent,
			Command: []string{"python", "-m", "http.server", "8080"},
			Ports:   []v1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			StartupProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromString("http")}},
				PeriodSeconds: 1, FailureThreshold: 30},
			ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(int32(readyPort))}},
				PeriodSeconds: 1}}
	}
	// The four pods start together, so that the unready pod's readiness periods and the liveness pod's
	// restart pass while the others are checked.
	p := conformance.NewPod("probes", server("ready", 8080))
	create(t, b, p, conformance.Objects{})
	// Readiness against a port nothing listens on: running, never ready.
	unready := conformance.NewPod("unready", server("unready", 8081))
	create(t, b, unready, conformance.Objects{})
	// A startup probe alone: neither started nor ready until it succeeds (it waits for a file the test
	// writes into a hostPath directory), then both. Each probe leaves a line there, so that the test sees
	// the probes fail before it looks.
	gate := t.TempDir()
	slow := conformance.ShellContainer("slow", "sleep 3600")
	slow.VolumeMounts = []v1.VolumeMount{{Name: "gate", MountPath: "/gate"}}
	slow.StartupProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{
		Command: []string{"sh", "-c", "echo probed >> /gate/probes; test -f /gate/open"}}},
		PeriodSeconds: 1, FailureThreshold: 300}
	sp := conformance.NewPod("startup", slow)
	sp.Spec.Volumes = []v1.Volume{{Name: "gate", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: gate}}}}
	create(t, b, sp, conformance.Objects{})
	// Liveness: once /tmp/alive is gone, the container is killed and restarted.
	live := conformance.ShellContainer("live", `touch /tmp/alive; sleep 2; rm /tmp/alive; sleep 60`)
	live.LivenessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"test", "-f", "/tmp/alive"}}},
		PeriodSeconds: 1, FailureThreshold: 2}
	lp := conformance.NewPod("liveness", live)
	lp.Spec.RestartPolicy = v1.RestartPolicyAlways
	grace := int64(1)
	lp.Spec.TerminationGracePeriodSeconds = &grace
	create(t, b, lp, conformance.Objects{})

	waitFor(t, b, p, "ready", func(st interlink.PodStatus) bool { return status(st, "ready").Ready })
	waitFor(t, b, unready, "started", func(st interlink.PodStatus) bool {
		s := status(st, "unready")
		return s.State.Running != nil && s.Started != nil && *s.Started
	})
	unreadyStarted := time.Now()

	waitFor(t, b, sp, "running", func(st interlink.PodStatus) bool { return status(st, "slow").State.Running != nil })
	labtest.WaitForLines(t, filepath.Join(gate, "probes"), 2, time.Minute) // two failing startup probes
	if s := status(conformance.StatusOf(t, b, sp, time.Minute), "slow"); s.Ready || s.Started == nil || *s.Started {
		t.Errorf("before its startup probe succeeded: ready %v started %v, want neither", s.Ready, s.Started)
	}
	if err := os.WriteFile(filepath.Join(gate, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b, sp, "started and ready", func(st interlink.PodStatus) bool {
		s := status(st, "slow")
		return s.Ready && s.Started != nil && *s.Started
	})

	// A few readiness periods (1 s) since the unready container started, most of them spent above.
	time.Sleep(time.Until(unreadyStarted.Add(4 * time.Second)))
	if s := status(conformance.StatusOf(t, b, unready, time.Minute), "unready"); s.Ready || s.State.Running == nil {
		t.Errorf("a container failing its readiness probe is ready: %+v", s)
	}

	waitFor(t, b, lp, "a restart after failing liveness", func(st interlink.PodStatus) bool {
		s := status(st, "live")
		return s.RestartCount >= 1 && s.LastTerminationState.Terminated != nil
	})
}
