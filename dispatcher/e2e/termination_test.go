package e2e

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

// A container's termination message reaches Kubernetes as the kubelet makes it: what the container wrote to
// its terminationMessagePath (the API server's default /dev/termination-log), and with
// FallbackToLogsOnError the end of the log of a run that failed without writing it. (Kubernetes' own
// conformance tests of the container runtime check these; the virtual kubelet keeps the message while it
// overwrites the reason.)
func TestTerminationMessageFromFileAndLog(t *testing.T) {
	forEachBackend(t, func(e *env) {
		file := sh("file", busybox, "printf DONE > /dev/termination-log")
		fallback := sh("fallback", busybox, "printf FAILED; exit 1")
		fallback.TerminationMessagePolicy = v1.TerminationMessageFallbackToLogsOnError
		e.create(e.pod("termination", file, fallback))
		p := e.waitPod("termination", e.finishTimeout, "finished", finished)
		if p.Status.Phase != v1.PodFailed {
			e.t.Fatalf("phase %s, want Failed: %s", p.Status.Phase, describe(p))
		}
		for name, want := range map[string]string{"file": "DONE", "fallback": "FAILED"} {
			cs := containerStatus(p, name)
			if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.Message != want {
				e.t.Errorf("container %s: not terminated with the message %q: %s", name, want, describe(p))
			}
		}
	})
}
