package e2e

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// execProbe is a probe that runs command in the container every second.
func execProbe(command ...string) *v1.Probe {
	return &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: command}},
		PeriodSeconds: 1, FailureThreshold: 120, TimeoutSeconds: 5}
}

// A readiness probe that never passes: a kubelet keeps the pod not Ready. The virtual kubelet marks a
// running container ready and its pod Ready whatever the plugin reports, so the pod is Ready.
func TestReadinessProbeDoesNotGateReadyInVirtualKubelet(t *testing.T) {
	forEachBackend(t, func(e *env) {
		c := sh("main", busybox, "trap 'exit 0' TERM; while true; do sleep 1; done")
		c.ReadinessProbe = execProbe("test", "-f", "/tmp/never-there")
		e.create(e.pod("readiness", c))
		e.waitPod("readiness", e.startTimeout, "running", running("main"))
		// The next status after Running should say Ready; with the whole suite's pods in the virtual kubelet's
		// status loop, that may be a while.
		p := e.waitPod("readiness", 2*time.Minute, "Ready as the virtual kubelet makes it", func(p *v1.Pod) bool {
			cs := containerStatus(p, "main")
			return podCondition(p, v1.PodReady) == v1.ConditionTrue && cs != nil && cs.Ready
		})
		e.t.Logf("Ready although the readiness probe cannot pass: %s", describe(p))
	})
}

// startupDelay is how long the startup probe case's container takes to pass its probe once running.
const startupDelay = 12 * time.Second

// A startup probe: the container is not started until it passes, about startupDelay after the container
// started, and then started. The virtual kubelet has the pod Ready from the first, as for readiness.
func TestStartupProbeGatesStartedNotReadyInVirtualKubelet(t *testing.T) {
	forEachBackend(t, func(e *env) {
		c := sh("main", busybox, "sleep 12; touch /tmp/started; trap 'exit 0' TERM; while true; do sleep 1; done")
		c.StartupProbe = execProbe("test", "-f", "/tmp/started")
		e.create(e.pod("startup", c))
		p := e.waitPod("startup", e.startTimeout, "running", running("main"))
		startedAt := containerStatus(p, "main").State.Running.StartedAt.Time
		if cs := containerStatus(p, "main"); time.Since(startedAt) < startupDelay-3*time.Second && cs.Started != nil && *cs.Started {
			e.t.Errorf("started %s after the container began, before its startup probe can pass: %s",
				time.Since(startedAt).Round(time.Second), describe(p))
		}
		p = e.waitPod("startup", e.startTimeout, "started", func(p *v1.Pod) bool {
			cs := containerStatus(p, "main")
			return cs != nil && cs.Started != nil && *cs.Started
		})
		if after := time.Since(startedAt); after < startupDelay-2*time.Second {
			e.t.Errorf("started %s after the container began, before its startup probe could pass (%s): %s",
				after.Round(time.Second), startupDelay, describe(p))
		}
		if podCondition(p, v1.PodReady) != v1.ConditionTrue {
			e.t.Errorf("not Ready once started: %s", describe(p))
		}
	})
}

// A postStart hook runs once the container has started; a preStop hook runs when the pod is deleted, before
// the container gets SIGTERM.
func TestLifecycleHooks(t *testing.T) {
	forEachBackend(t, func(e *env) {
		// After SIGTERM it lingers 3 s (of its 20 s grace) before exiting, so that a followed log delivers its
		// last line before the delete removes the container: the line, not the stream's race with removal,
		// is what is under test.
		c := sh("main", busybox, `trap 'echo "got-TERM prestop=$(cat /tmp/prestop 2>/dev/null)"; sleep 3; exit 0' TERM
for i in $(seq 1 60); do [ -s /tmp/poststart ] && break; sleep 1; done
echo "poststart=$(cat /tmp/poststart 2>/dev/null)"
while true; do sleep 1; done`)
		c.Lifecycle = &v1.Lifecycle{
			PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo ran > /tmp/poststart"}}},
			PreStop:   &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo ran > /tmp/prestop"}}},
		}
		p := e.pod("hooks", c)
		p.Spec.TerminationGracePeriodSeconds = ptr[int64](20)
		e.create(p)
		e.waitPod("hooks", e.startTimeout, "running", running("main"))
		f := e.follow("hooks", v1.PodLogOptions{}, 3*time.Minute)
		f.until(e.t, "poststart=ran", time.Minute)
		if err := e.c.core.Pods(e.ns).Delete(e.ctx, "hooks", metav1.DeleteOptions{}); err != nil {
			e.t.Fatal(err)
		}
		got := texts(f.rest(e.t, time.Minute))
		if len(got) == 0 || got[len(got)-1] != "got-TERM prestop=ran" {
			e.t.Errorf("after the delete the container printed %q, want it to see SIGTERM after the preStop hook ran", got)
		}
	})
}
