package e2e

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// kubectl logs --tail, --timestamps and --since on a finished container.
func TestLogsTailTimestampsSince(t *testing.T) {
	forEachBackend(t, func(e *env) {
		e.create(e.pod("logs", sh("main", busybox,
			"for i in 1 2 3 4 5; do echo early-$i; done; sleep 10; echo late-1; echo late-2")))
		p := e.waitPod("logs", e.finishTimeout, "Succeeded", finished)
		if p.Status.Phase != v1.PodSucceeded {
			e.t.Fatalf("phase %s: %s", p.Status.Phase, describe(p))
		}
		all := e.logs("logs", v1.PodLogOptions{})
		if want := "early-1\nearly-2\nearly-3\nearly-4\nearly-5\nlate-1\nlate-2\n"; all != want {
			e.t.Fatalf("kubectl logs: %q, want %q", all, want)
		}
		if got := e.logs("logs", v1.PodLogOptions{TailLines: ptr[int64](2)}); got != "late-1\nlate-2\n" {
			e.t.Errorf("kubectl logs --tail=2: %q, want the last two lines", got)
		}

		// --timestamps: an RFC 3339 time before each line, in order, within the pod's life.
		stamped := strings.Split(strings.TrimSuffix(e.logs("logs", v1.PodLogOptions{Timestamps: true}), "\n"), "\n")
		if len(stamped) != 7 {
			e.t.Fatalf("kubectl logs --timestamps: %d lines, want 7: %q", len(stamped), stamped)
		}
		times := map[string]time.Time{}
		var prev time.Time
		for _, line := range stamped {
			ts, text, ok := strings.Cut(line, " ")
			at, err := time.Parse(time.RFC3339Nano, ts)
			if !ok || err != nil {
				e.t.Fatalf("kubectl logs --timestamps: line %q does not start with an RFC 3339 time (%v)", line, err)
			}
			if at.Before(prev) {
				e.t.Errorf("kubectl logs --timestamps: %q is earlier than the line before", line)
			}
			if at.Before(p.CreationTimestamp.Add(-2*time.Second)) || at.After(time.Now().Add(2*time.Second)) {
				e.t.Errorf("kubectl logs --timestamps: %q is not within the pod's life (created %s)", line, p.CreationTimestamp.UTC())
			}
			prev, times[text] = at, at
		}
		gap := times["late-1"].Sub(times["early-5"])
		if gap < 9*time.Second || gap > 25*time.Second {
			e.t.Errorf("kubectl logs --timestamps: %s between early-5 and late-1, want the script's 10 s", gap)
		}

		// --since: a window that starts in the middle of the 10 s gap, so that it holds the late lines and not
		// the early ones even when the request takes seconds to reach the backend: the backend counts the
		// seconds back from then, and may round the start down to a whole second, so the window starts
		// between 2 s before the middle and the request's delay after it.
		mid := times["early-5"].Add(gap / 2)
		since := int64(math.Ceil(time.Since(mid).Seconds()))
		got := e.logs("logs", v1.PodLogOptions{SinceSeconds: &since})
		if got != "late-1\nlate-2\n" {
			e.t.Errorf("kubectl logs --since=%ds (late lines %s ago, early ones %s): %q, want only the late lines",
				since, time.Since(times["late-1"]).Round(time.Second), time.Since(times["early-5"]).Round(time.Second), got)
		}
	})
}

// kubectl logs -f streams lines as the container prints them and ends when the container ends.
func TestLogsFollowEndsWithContainer(t *testing.T) {
	forEachBackend(t, func(e *env) {
		e.create(e.pod("follow", sh("main", busybox, "for i in $(seq 1 20); do echo tick-$i; sleep 1; done; echo done")))
		// Followed from the moment the container exists on its backend, whatever the virtual kubelet's
		// status lag: until then the stream ends at once, empty, or is refused.
		opened := time.Now()
		var lines []logLine
		for deadline := time.Now().Add(e.startTimeout); len(lines) == 0; time.Sleep(time.Second) {
			if time.Now().After(deadline) {
				e.t.Fatalf("kubectl logs -f gave no line within %s", e.startTimeout)
			}
			if f, err := e.openFollow("follow", v1.PodLogOptions{}, 2*time.Minute); err == nil {
				opened = time.Now()
				lines = f.rest(e.t, 90*time.Second)
			}
		}
		ended := time.Now()
		got := texts(lines)
		if len(got) == 0 || got[len(got)-1] != "done" {
			e.t.Fatalf("followed log %q does not end with the container's last line", got)
		}
		if len(got) != 21 {
			e.t.Fatalf("followed log has %d lines, want the container's 21: %q", len(got), got)
		}
		for i := 1; i <= 20; i++ {
			if got[i-1] != fmt.Sprintf("tick-%d", i) {
				e.t.Fatalf("followed log %q is not the container's whole output in order", got)
			}
		}
		// Lines came while the stream was open, not all at once at its end.
		if spread := lines[len(lines)-1].at.Sub(lines[0].at); spread < 3*time.Second {
			e.t.Errorf("all lines arrived within %s: the log was not streamed as printed", spread)
		}
		if last := lines[len(lines)-1].at; ended.Sub(last) > 30*time.Second {
			e.t.Errorf("the stream ended %s after the container's last line", ended.Sub(last))
		}
		e.t.Logf("followed for %s", ended.Sub(opened).Round(time.Millisecond))
	})
}

// kubectl logs --previous shows the instance before a restart, and plain kubectl logs the current one.
func TestLogsPreviousAfterRestart(t *testing.T) {
	forEachBackend(t, func(e *env) {
		p := e.pod("previous", sh("main", busybox, `n=$(cat /data/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/runs
echo run-$n
if [ $n -lt 2 ]; then exit 1; fi
trap 'exit 0' TERM; while true; do sleep 1; done`))
		p.Spec.RestartPolicy = v1.RestartPolicyOnFailure
		withEmptyDir(p, "data", "/data")
		e.create(p)
		p = e.waitPod("previous", e.startTimeout+time.Minute, "restarted and running", func(p *v1.Pod) bool {
			cs := containerStatus(p, "main")
			return cs != nil && cs.RestartCount >= 1 && cs.State.Running != nil
		})
		cs := containerStatus(p, "main")
		if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
			e.t.Errorf("last state is not terminated with exit code 1: %s", describe(p))
		}
		if got := e.logs("previous", v1.PodLogOptions{Previous: true}); got != "run-1\n" {
			e.t.Errorf("kubectl logs --previous: %q, want the first run's %q", got, "run-1\n")
		}
		if got := e.waitLogs("previous", "main", "run-2", 30*time.Second); got != "run-2\n" {
			e.t.Errorf("kubectl logs: %q, want the current run's %q", got, "run-2\n")
		}
	})
}

// withEmptyDir adds an emptyDir volume mounted at path in every container and init container of p.
func withEmptyDir(p *v1.Pod, name, path string) {
	p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: name, VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}})
	for _, cs := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			cs[i].VolumeMounts = append(cs[i].VolumeMounts, v1.VolumeMount{Name: name, MountPath: path})
		}
	}
}
