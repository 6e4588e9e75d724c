package e2e

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// Init containers run one after the other, in spec order, before the regular container.
func TestInitContainersRunInOrder(t *testing.T) {
	forEachBackend(t, func(e *env) {
		p := e.pod("init", sh("main", busybox, "cat /work/order"))
		p.Spec.InitContainers = []v1.Container{
			sh("first", busybox, "sleep 2; echo first | tee -a /work/order"),
			sh("second", busybox, "echo second | tee -a /work/order"),
		}
		withEmptyDir(p, "work", "/work")
		e.create(p)
		p = e.waitPod("init", e.finishTimeout, "finished", finished)
		if p.Status.Phase != v1.PodSucceeded {
			e.t.Fatalf("phase %s, want Succeeded: %s", p.Status.Phase, describe(p))
		}
		for _, name := range []string{"first", "second"} {
			cs := containerStatus(p, name)
			if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
				e.t.Errorf("init container %s is not terminated with exit code 0: %s", name, describe(p))
			}
			if got := e.logs("init", v1.PodLogOptions{Container: name}); got != name+"\n" {
				e.t.Errorf("kubectl logs -c %s: %q, want %q", name, got, name+"\n")
			}
		}
		if got := e.logs("init", v1.PodLogOptions{Container: "main"}); got != "first\nsecond\n" {
			e.t.Errorf("the main container read %q, want the init containers' lines in order", got)
		}
	})
}

// TestFailingInitContainerStopsPodExitCodeMayBeOverwrittenInVirtualKubelet: an init container that fails stops the pod (restartPolicy Never): the pod is Failed, the later init
// container and the regular one never run, and the failed one's log is readable. The dispatcher reports the
// failed one's exit code, 4; Kubernetes shows 4 too unless the virtual kubelet overwrote it: when it first
// sees several init containers' statuses in one answer, it applies each new one's state to the first
// (execute.go's index stays 0 for an appended status), so a pod that fails before its first poll shows the
// exit code of the later, never-started one (137). The test accepts exactly that and says so.
func TestFailingInitContainerStopsPodExitCodeMayBeOverwrittenInVirtualKubelet(t *testing.T) {
	forEachBackend(t, func(e *env) {
		p := e.pod("initfail", sh("main", busybox, "echo main-must-not-run"))
		p.Spec.InitContainers = []v1.Container{
			sh("setup", busybox, "echo setup-cannot-go-on; exit 4"),
			sh("later", busybox, "echo later-must-not-run"),
		}
		e.create(p)
		p = e.waitPod("initfail", e.finishTimeout, "finished", finished)
		if p.Status.Phase != v1.PodFailed {
			e.t.Fatalf("phase %s, want Failed: %s", p.Status.Phase, describe(p))
		}
		own := e.dispatcherStatus(p)
		switch got, later := exitCode(statusOf(own.InitContainers, "setup")), exitCode(statusOf(own.InitContainers, "later")); {
		case got == "4":
		case e.backend == "kubernetes" && got == later && got != "0":
			// The Kubernetes backend reports the remote pod's statuses, and the lab's remote node is a
			// virtual kubelet too: it overwrites them the same way.
			e.t.Logf("the Kubernetes backend reports setup's exit code as %s, the later init container's, as the remote virtual kubelet shows it", got)
		default:
			e.t.Errorf("the dispatcher reports init container setup's exit code as %s, want 4", got)
		}
		cs := containerStatus(p, "setup")
		switch got, later := exitCode(cs), exitCode(statusOf(own.InitContainers, "later")); {
		case got == "4":
		case got == later && got != "0":
			e.t.Logf("the virtual kubelet shows setup's exit code as %s, the later init container's, not the 4 the dispatcher reported", got)
		default:
			e.t.Errorf("init container setup shows exit code %s, want 4 (or, overwritten by the virtual kubelet, later's %s): %s", got, later, describe(p))
		}
		for _, name := range []string{"later", "main"} {
			if cs := containerStatus(p, name); cs != nil && (cs.State.Running != nil ||
				cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0) {
				e.t.Errorf("container %s ran after the failed init container: %s", name, describe(p))
			}
		}
		if got := e.logs("initfail", v1.PodLogOptions{Container: "setup"}); got != "setup-cannot-go-on\n" {
			e.t.Errorf("kubectl logs -c setup: %q, want %q", got, "setup-cannot-go-on\n")
		}
		for _, name := range []string{"later", "main"} {
			if got, _ := e.logsErr("initfail", v1.PodLogOptions{Container: name}); strings.Contains(got, "must-not-run") {
				e.t.Errorf("kubectl logs -c %s: %q: it ran", name, got)
			}
		}
	})
}
