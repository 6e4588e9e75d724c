package e2e

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// deleteGrace is the grace period the delete case asks for.
const deleteGrace = 6 * time.Second

// A delete with a grace period: the workload gets SIGTERM (which it ignores, printing that it saw it) and
// is killed when the grace is over. kubectl logs -f, open across the delete, shows both.
func TestDeleteWithGracePeriod(t *testing.T) {
	forEachBackend(t, func(e *env) {
		p := e.pod("grace", sh("main", busybox, "trap 'echo got-SIGTERM' TERM; echo started; while true; do sleep 1; echo tick; done"))
		p.Spec.TerminationGracePeriodSeconds = ptr[int64](60)
		e.create(p)
		e.waitPod("grace", startTimeout, "running", running("main"))
		f := e.follow("grace", v1.PodLogOptions{}, 3*time.Minute)
		f.until(e.t, "started", time.Minute)
		deleted := time.Now()
		grace := int64(deleteGrace / time.Second)
		if err := e.c.core.Pods(e.ns).Delete(e.ctx, "grace", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
			e.t.Fatal(err)
		}
		before := f.until(e.t, "got-SIGTERM", time.Minute)
		termAt := before[len(before)-1].at
		after := f.rest(e.t, time.Minute)
		ended := time.Now()
		ticks := 0
		for _, l := range after {
			if strings.Contains(l.text, "tick") {
				ticks++
			}
		}
		e.t.Logf("SIGTERM seen %s after the delete; %d ticks after it; the stream ended %s after it",
			termAt.Sub(deleted).Round(time.Millisecond), ticks, ended.Sub(termAt).Round(time.Millisecond))
		if termAt.Sub(deleted) > deleteGrace {
			e.t.Errorf("SIGTERM seen %s after the delete", termAt.Sub(deleted))
		}
		// The workload ignores SIGTERM and ticks every second until SIGKILL ends it, at the end of the grace:
		// about grace ticks after SIGTERM, and its log ends then (the time to notice the end aside).
		if ticks < int(grace)-2 || ticks > int(grace)+1 {
			e.t.Errorf("%d ticks after SIGTERM, want about %d: the workload must live the %s grace, and no longer",
				ticks, grace, deleteGrace)
		}
		// The followed log ends once the backend has seen the end: for SLURM, the job's, some seconds later.
		if lived := ended.Sub(termAt); lived < deleteGrace-2*time.Second || lived > deleteGrace+15*time.Second {
			e.t.Errorf("the workload's log ended %s after its SIGTERM, want it soon after the end of the %s grace", lived, deleteGrace)
		}
		e.poll(time.Minute, "the pod gone", func() (bool, string) {
			p, err := e.c.core.Pods(e.ns).Get(e.ctx, "grace", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, ""
			}
			return false, describe(p)
		})
	})
}
