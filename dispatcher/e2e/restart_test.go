package e2e

import (
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// restartPolicy OnFailure: a container that fails twice and then succeeds is restarted, its restartCount
// rising 1 then 2, and the pod ends Succeeded.
func TestRestartOnFailureCountsRestarts(t *testing.T) {
	forEachBackend(t, func(e *env) {
		p := e.pod("restarts", sh("main", busybox, `n=$(cat /data/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/runs
echo run-$n; if [ $n -lt 3 ]; then exit 1; fi`))
		p.Spec.RestartPolicy = v1.RestartPolicyOnFailure
		withEmptyDir(p, "data", "/data")
		e.create(p)
		var seen []int32
		p = e.waitPod("restarts", e.finishTimeout+time.Minute, "finished", func(p *v1.Pod) bool {
			if cs := containerStatus(p, "main"); cs != nil && (len(seen) == 0 || seen[len(seen)-1] != cs.RestartCount) {
				seen = append(seen, cs.RestartCount)
			}
			return finished(p)
		})
		if p.Status.Phase != v1.PodSucceeded {
			e.t.Fatalf("phase %s, want Succeeded: %s", p.Status.Phase, describe(p))
		}
		cs := containerStatus(p, "main")
		if cs == nil {
			e.t.Fatalf("no status of container main: %s", describe(p))
		}
		if cs.RestartCount != 2 {
			e.t.Errorf("restartCount %d at the end, want 2: %s", cs.RestartCount, describe(p))
		}
		// The virtual kubelet polls every 5 s: a quick restart may be seen only as a jump.
		if !slices.IsSorted(seen) || len(seen) < 2 || seen[len(seen)-1] != 2 {
			e.t.Errorf("restartCount went %v, want it rising to 2", seen)
		}
		if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
			e.t.Errorf("last state is not the failed run's exit code 1: %s", describe(p))
		}
		if got := e.logs("restarts", v1.PodLogOptions{}); got != "run-3\n" {
			e.t.Errorf("kubectl logs: %q, want the last run's %q", got, "run-3\n")
		}
	})
}

// A container over its memory limit is killed by the kernel (exit code 137, its output cut short). A
// kubelet says OOMKilled; the virtual kubelet overwrites every terminated reason with "Error: <exit code>".
func TestMemoryLimitKillsButOOMKilledReasonLostInVirtualKubelet(t *testing.T) {
	forEachBackend(t, func(e *env) {
		c := sh("main", python, "")
		c.Command = []string{"python3", "-c", "import time\nprint('allocating', flush=True)\nx = b'x' * (400 << 20)\nprint('survived', flush=True)\ntime.sleep(2)"}
		c.Resources = v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
		}
		e.create(e.pod("oom", c))
		p := e.waitPod("oom", e.finishTimeout, "finished", finished)
		if p.Status.Phase != v1.PodFailed {
			e.t.Fatalf("phase %s, want Failed: %s", p.Status.Phase, describe(p))
		}
		cs := containerStatus(p, "main")
		if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 137 || cs.State.Terminated.Reason != "Error: 137" {
			e.t.Errorf("container main is not terminated with exit code 137 and the virtual kubelet's reason: %s", describe(p))
		}
		if got := e.logs("oom", v1.PodLogOptions{}); got != "allocating\n" {
			e.t.Errorf("kubectl logs: %q, want it killed while allocating", got)
		}
	})
}
