package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// deleteGrace is the grace period the delete case asks for: longer than the measurement's slack (sigkillSlack)
// so that a kill at SIGTERM shows, and away from the engines' 10 s and SLURM's 30 s defaults so that a grace
// taken from elsewhere shows too.
const deleteGrace = 15 * time.Second

// sigkillSlack bounds how far from SIGTERM plus the grace the workload's last tick may be, by its own clock:
// its trap runs only once the current `sleep 1` is over (up to 1 s late), its last tick comes up to one loop
// (1 s and a fork, more on a loaded machine) before SIGKILL, and SIGKILL itself may come a little late.
const sigkillSlack = 3 * time.Second

// A delete with a grace period: the workload gets SIGTERM (which it ignores, printing that it saw it) and
// is killed when the grace is over. kubectl logs -f, open across the delete, shows both. The workload
// stamps its lines with the host's uptime (/proc/uptime, which containers share), so that how long it lived
// after SIGTERM is measured where it ran, whatever the delays of the log's way to the test.
func TestDeleteWithGracePeriod(t *testing.T) {
	forEachBackend(t, func(e *env) {
		p := e.pod("grace", sh("main", busybox, `trap 'read up _ < /proc/uptime; echo "got-SIGTERM $up"' TERM; echo started
while true; do sleep 1; read up _ < /proc/uptime; echo "tick $up"; done`))
		p.Spec.TerminationGracePeriodSeconds = ptr[int64](60)
		e.create(p)
		e.waitPod("grace", e.startTimeout, "running", running("main"))
		f := e.follow("grace", v1.PodLogOptions{}, 3*time.Minute)
		f.until(e.t, "started", time.Minute)
		deleted := time.Now()
		grace := int64(deleteGrace / time.Second)
		if err := e.c.core.Pods(e.ns).Delete(e.ctx, "grace", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
			e.t.Fatal(err)
		}
		before := f.until(e.t, "got-SIGTERM", time.Minute)
		termLine := before[len(before)-1]
		after := f.rest(e.t, time.Minute)
		ended := time.Now()
		termUp, err := uptimeOf(termLine.text, "got-SIGTERM")
		if err != nil {
			e.t.Fatal(err)
		}
		ticks, lastUp := 0, termUp
		for _, l := range after {
			if strings.HasPrefix(l.text, "tick ") {
				up, err := uptimeOf(l.text, "tick")
				if err != nil {
					e.t.Fatal(err)
				}
				ticks, lastUp = ticks+1, up
			}
		}
		lived := lastUp - termUp
		e.t.Logf("SIGTERM seen %s after the delete; the workload lived %s (%d ticks) after it; the stream ended %s after it",
			termLine.at.Sub(deleted).Round(time.Millisecond), lived.Round(10*time.Millisecond), ticks,
			ended.Sub(termLine.at).Round(time.Millisecond))
		// The delete's way to the backend (API server, virtual kubelet, interLink, dispatcher) takes some
		// seconds on a loaded machine; SIGTERM must still come well before the grace could have run out.
		if termLine.at.Sub(deleted) > 20*time.Second {
			e.t.Errorf("SIGTERM seen %s after the delete", termLine.at.Sub(deleted))
		}
		// The workload ignores SIGTERM and ticks every second until SIGKILL ends it, at the end of the grace:
		// not before (a kill at SIGTERM, or a shorter grace), and not long after (a longer grace from the pod's
		// spec or an engine's default).
		if lived < deleteGrace-sigkillSlack || lived > deleteGrace+sigkillSlack {
			e.t.Errorf("the workload lived %s after SIGTERM by its own clock, want %s ± %s: SIGKILL must end it at the end of the grace",
				lived.Round(10*time.Millisecond), deleteGrace, sigkillSlack)
		}
		// The followed log ends once the backend has seen the end: for SLURM, the job's, some seconds later.
		if took := ended.Sub(termLine.at); took > deleteGrace+20*time.Second {
			e.t.Errorf("the workload's log ended %s after its SIGTERM, want it soon after the end of the %s grace", took, deleteGrace)
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

// uptimeOf reads the uptime a line "<word> <seconds since boot>" of the delete case's workload carries.
func uptimeOf(line, word string) (time.Duration, error) {
	rest, ok := strings.CutPrefix(line, word+" ")
	if !ok {
		return 0, fmt.Errorf("line %q does not start with %q", line, word)
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
	if err != nil {
		return 0, fmt.Errorf("line %q does not carry the uptime: %v", line, err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}
