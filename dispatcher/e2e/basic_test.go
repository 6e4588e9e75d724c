package e2e

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// A pod that exits 0 is Succeeded, its container terminated with exit code 0, its output in kubectl logs, and
// the scheduler put it on the virtual node.
func TestPodSucceeds(t *testing.T) {
	forEachBackend(t, func(e *env) {
		e.create(e.pod("ok", sh("main", busybox, "echo e2e-ok-$((6*7))")))
		p := e.waitPod("ok", e.finishTimeout, "finished", finished)
		if p.Status.Phase != v1.PodSucceeded {
			e.t.Fatalf("phase %s, want Succeeded: %s", p.Status.Phase, describe(p))
		}
		cs := containerStatus(p, "main")
		if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			e.t.Errorf("container main is not terminated with exit code 0: %s", describe(p))
		}
		if got := e.logs("ok", v1.PodLogOptions{Container: "main"}); got != "e2e-ok-42\n" {
			e.t.Errorf("kubectl logs: %q, want %q", got, "e2e-ok-42\n")
		}
		if p.Spec.NodeName != e.c.Node {
			e.t.Errorf("pod on node %q, want the virtual node %q", p.Spec.NodeName, e.c.Node)
		}
		e.waitEvent("ok", "Scheduled", e.c.Node, e.startTimeout)
	})
}

// A container that exits 3 makes the pod Failed, and its terminated state carries exit code 3.
func TestPodFailsWithExitCode3(t *testing.T) {
	forEachBackend(t, func(e *env) {
		e.create(e.pod("fail", sh("main", busybox, "echo about-to-fail; exit 3")))
		p := e.waitPod("fail", e.finishTimeout, "finished", finished)
		if p.Status.Phase != v1.PodFailed {
			e.t.Fatalf("phase %s, want Failed: %s", p.Status.Phase, describe(p))
		}
		cs := containerStatus(p, "main")
		if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 3 {
			e.t.Errorf("container main is not terminated with exit code 3: %s", describe(p))
		}
		if got := e.logs("fail", v1.PodLogOptions{}); got != "about-to-fail\n" {
			e.t.Errorf("kubectl logs: %q, want %q", got, "about-to-fail\n")
		}
	})
}

// An image no registry has: the container waits with ErrImagePull or ImagePullBackOff and never runs. The
// virtual kubelet takes any waiting container for a running one: the pod shows Running and Ready (a
// kubelet keeps it Pending and not Ready). A SLURM job gives up after pull_retries pulls (about 30 s in the
// lab): a busy virtual kubelet, polling every pod one after the other, can miss that window and see only
// the end, the container terminated with the pull's error as its message.
func TestMissingImageWaitsOnARunningReadyPodInVirtualKubelet(t *testing.T) {
	forEachBackend(t, func(e *env) {
		c := sh("main", "busybox:e2e-no-such-tag", "echo must-not-run")
		c.ImagePullPolicy = v1.PullAlways
		e.create(e.pod("noimage", c))
		gaveUp := func(cs *v1.ContainerStatus) bool {
			return e.backend == "slurm" && cs.State.Terminated != nil && strings.Contains(cs.State.Terminated.Message, "e2e-no-such-tag")
		}
		p := e.waitPod("noimage", e.startTimeout, "a pull error in the waiting reason", func(p *v1.Pod) bool {
			cs := containerStatus(p, "main")
			return cs != nil && (gaveUp(cs) || cs.State.Waiting != nil &&
				(cs.State.Waiting.Reason == "ErrImagePull" || cs.State.Waiting.Reason == "ImagePullBackOff"))
		})
		if cs := containerStatus(p, "main"); gaveUp(cs) {
			if got := e.logs("noimage", v1.PodLogOptions{}); strings.Contains(got, "must-not-run") {
				e.t.Errorf("the container ran without its image: %q", got)
			}
			return
		}
		w := containerStatus(p, "main").State.Waiting
		if !strings.Contains(w.Message, "e2e-no-such-tag") {
			e.t.Errorf("waiting message %q does not name the image", w.Message)
		}
		if p.Status.Phase != v1.PodRunning || podCondition(p, v1.PodReady) != v1.ConditionTrue {
			e.t.Errorf("phase %s Ready=%s, the virtual kubelet was seen to show Running and Ready: %s",
				p.Status.Phase, podCondition(p, v1.PodReady), describe(p))
		}
		if cs := containerStatus(p, "main"); cs.Ready || cs.State.Running != nil {
			e.t.Errorf("the container itself is ready or running: %s", describe(p))
		}
	})
}

// A command that does not exist in the image: the pod fails and the container's state says why.
func TestMissingCommand(t *testing.T) {
	forEachBackend(t, func(e *env) {
		c := sh("main", busybox, "")
		c.Command = []string{"/bin/e2e-no-such-command"}
		e.create(e.pod("nocmd", c))
		p := e.waitPod("nocmd", e.finishTimeout, "finished", finished)
		if p.Status.Phase != v1.PodFailed {
			e.t.Fatalf("phase %s, want Failed: %s", p.Status.Phase, describe(p))
		}
		cs := containerStatus(p, "main")
		if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode == 0 {
			e.t.Fatalf("container main is not terminated with a non-zero exit code: %s", describe(p))
		}
		if !strings.Contains(cs.State.Terminated.Message, "e2e-no-such-command") {
			e.t.Errorf("terminated message %q does not name the command", cs.State.Terminated.Message)
		}
	})
}
