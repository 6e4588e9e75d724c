package e2e

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// A pod the dispatcher refuses, a hostPath no lab backend's policy allows (nor the kubernetes backend's
// capabilities), ends Failed with the dispatcher's sentence where the user reads it: the main container's
// terminated message, with the exit code the dispatcher gives refused pods (1).
func TestRefusedPodFailsWithDispatcherReason(t *testing.T) {
	forEachBackend(t, func(e *env) {
		p := e.pod("refused", sh("main", busybox, "echo must-not-run"))
		p.Spec.Volumes = []v1.Volume{{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/etc"}}}}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "host", MountPath: "/host", ReadOnly: true}}
		e.create(p)
		sentence := `no host path is allowed on backend "` + e.backend + `"`
		if e.backend == "kubernetes" {
			// Refused before the policy is asked: a remote cluster's nodes are not the pod's host, so the
			// backend does not declare hostPath at all (backends/kubernetes).
			sentence = `volume kind "hostPath" is not supported by backend "kubernetes"`
		}
		p = e.waitPod("refused", e.finishTimeout, "finished", finished)
		if p.Status.Phase != v1.PodFailed {
			e.t.Fatalf("phase %s, want Failed: %s", p.Status.Phase, describe(p))
		}
		cs := containerStatus(p, "main")
		if cs == nil || cs.State.Terminated == nil {
			e.t.Fatalf("container main is not terminated: %s", describe(p))
		}
		if tm := cs.State.Terminated; tm.ExitCode != 1 || !strings.Contains(tm.Message, sentence) {
			e.t.Errorf("container main terminated with exit code %d and message %q, want exit code 1 and the dispatcher's sentence (%q); events %s",
				tm.ExitCode, tm.Message, sentence, eventsString(e.events("refused")))
		}
		if got, _ := e.logsErr("refused", v1.PodLogOptions{}); strings.Contains(got, "must-not-run") {
			e.t.Errorf("kubectl logs: %q: the refused pod ran", got)
		}
	})
}
