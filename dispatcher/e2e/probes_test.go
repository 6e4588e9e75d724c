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

// gateDelay is how long the probe cases' containers take to become ready once running.
const gateDelay = 12 * time.Second

// A readiness probe keeps the pod's Ready condition False while it fails, and True once it passes.
func TestReadinessProbeGatesReady(t *testing.T) {
	forEachBackend(t, func(e *env) {
		c := sh("main", busybox, "sleep 12; touch /tmp/ready; trap 'exit 0' TERM; while true; do sleep 1; done")
		c.ReadinessProbe = execProbe("test", "-f", "/tmp/ready")
		e.create(e.pod("readiness", c))
		e.probeGates("readiness")
	})
}

// A startup probe keeps the container not started and the pod not Ready while it fails.
func TestStartupProbeGatesReady(t *testing.T) {
	forEachBackend(t, func(e *env) {
		c := sh("main", busybox, "sleep 12; touch /tmp/started; trap 'exit 0' TERM; while true; do sleep 1; done")
		c.StartupProbe = execProbe("test", "-f", "/tmp/started")
		e.create(e.pod("startup", c))
		p := e.probeGates("startup")
		if cs := containerStatus(p, "main"); cs.Started == nil || !*cs.Started {
			e.t.Errorf("the container is Ready but not started: %s", describe(p))
		}
	})
}

// probeGates waits for the pod's container to run, sees it not Ready then, and sees it Ready about
// gateDelay after it started.
func (e *env) probeGates(name string) *v1.Pod {
	e.t.Helper()
	p := e.waitPod(name, startTimeout, "running", running("main"))
	startedAt := containerStatus(p, "main").State.Running.StartedAt
	if time.Since(startedAt.Time) < gateDelay-3*time.Second {
		if podCondition(p, v1.PodReady) == v1.ConditionTrue || containerStatus(p, "main").Ready {
			e.t.Errorf("Ready %s after the container started, before its probe can pass: %s",
				time.Since(startedAt.Time).Round(time.Second), describe(p))
		}
	} else {
		e.t.Logf("the container was first seen running %s after it started: too late to see it not Ready", time.Since(startedAt.Time))
	}
	p = e.waitPod(name, startTimeout, "Ready", func(p *v1.Pod) bool {
		return podCondition(p, v1.PodReady) == v1.ConditionTrue && containerStatus(p, "main").Ready
	})
	if after := readySince(p).Sub(startedAt.Time); after < gateDelay-2*time.Second {
		e.t.Errorf("Ready %s after the container started, before its probe could pass (%s): %s", after, gateDelay, describe(p))
	}
	return p
}

// readySince is when the pod's Ready condition last changed, or now.
func readySince(p *v1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	return time.Now()
}

// A postStart hook runs once the container has started; a preStop hook runs when the pod is deleted, before
// the container gets SIGTERM.
func TestLifecycleHooks(t *testing.T) {
	forEachBackend(t, func(e *env) {
		c := sh("main", busybox, `trap 'echo "got-TERM prestop=$(cat /tmp/prestop 2>/dev/null)"; exit 0' TERM
for i in $(seq 1 60); do [ -f /tmp/poststart ] && break; sleep 1; done
echo "poststart=$(cat /tmp/poststart 2>/dev/null)"
while true; do sleep 1; done`)
		c.Lifecycle = &v1.Lifecycle{
			PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo ran > /tmp/poststart"}}},
			PreStop:   &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo ran > /tmp/prestop"}}},
		}
		p := e.pod("hooks", c)
		p.Spec.TerminationGracePeriodSeconds = ptr[int64](20)
		e.create(p)
		e.waitPod("hooks", startTimeout, "running", running("main"))
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
