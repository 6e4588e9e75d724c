package e2e

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// A pod the dispatcher refuses, a hostPath no lab backend's policy allows, ends Failed with the
// dispatcher's sentence where the user reads it: the pod's message, a container's state, or an event.
func TestRefusedPodFailsWithDispatcherReason(t *testing.T) {
	forEachBackend(t, func(e *env) {
		p := e.pod("refused", sh("main", busybox, "echo must-not-run"))
		p.Spec.Volumes = []v1.Volume{{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/etc"}}}}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "host", MountPath: "/host", ReadOnly: true}}
		e.create(p)
		const sentence = "no host path is allowed on backend"
		p = e.waitPod("refused", finishTimeout, "finished", finished)
		if p.Status.Phase != v1.PodFailed {
			e.t.Fatalf("phase %s, want Failed: %s", p.Status.Phase, describe(p))
		}
		where := ""
		if strings.Contains(p.Status.Message, sentence) {
			where = "status.message"
		}
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && strings.Contains(t.Message, sentence) {
				where = "containerStatuses[" + cs.Name + "].state.terminated.message"
			}
		}
		for _, ev := range e.events("refused") {
			if strings.Contains(ev.Message, sentence) {
				where = "event " + ev.Reason
			}
		}
		if where == "" {
			e.t.Fatalf("the dispatcher's refusal (%q) is nowhere the user can read it: %s; events %s",
				sentence, describe(p), eventsString(e.events("refused")))
		}
		e.t.Logf("the refusal is in %s", where)
	})
}
