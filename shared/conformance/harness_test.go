package conformance

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// TestSkipSummary checks that every skip, whichever way it came, is listed once with its reason.
func TestSkipSummary(t *testing.T) {
	h := &harness{caps: backend.Capabilities{VolumeKinds: []string{"emptyDir"}}}
	if got, want := h.summaryText("conformance", 3), "conformance: all 3 scenarios ran, none skipped"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
	t.Run("skipper", func(t *testing.T) {
		t.Run("a", func(t *testing.T) { h.skip(t, ScenarioConfigMap, "no configMap") })
		t.Run("b", func(t *testing.T) { h.skip(t, ScenarioVanished, "no Vanish") })
	})
	want := "conformance: 2 of 3 scenarios skipped:\n  vanished: no Vanish\n  volumes/configMap: no configMap"
	if got := h.summaryText("conformance", 3); got != want {
		t.Errorf("summary =\n%s\nwant\n%s", got, want)
	}
	if got := h.needs("emptyDir", "secret", "secret", backend.FeatureProbes); len(got) != 2 || got[0] != "secret" || got[1] != backend.FeatureProbes {
		t.Errorf("needs = %v, want [secret probes] (declared ones out, each once)", got)
	}
}

// TestFitPod checks that the harness's pods carry an explicit pull policy and a short grace period only for a
// backend that declares them, and keep them for one that does.
func TestFitPod(t *testing.T) {
	bare := NewPod("fit", ShellContainer("main", "true"))
	WithInit(bare, ShellContainer("init", "true"))
	fitPod(bare, backend.Capabilities{})
	if bare.Spec.TerminationGracePeriodSeconds != nil || bare.Spec.Containers[0].ImagePullPolicy != "" ||
		bare.Spec.InitContainers[0].ImagePullPolicy != "" {
		t.Errorf("fitted for a backend declaring nothing, the pod still has grace %v and pull policies %q, %q",
			bare.Spec.TerminationGracePeriodSeconds, bare.Spec.Containers[0].ImagePullPolicy, bare.Spec.InitContainers[0].ImagePullPolicy)
	}
	full := NewPod("fit", ShellContainer("main", "true"))
	fitPod(full, backend.Capabilities{Features: []string{backend.FeatureImagePullPolicy, backend.FeatureTerminationGrace}})
	if full.Spec.TerminationGracePeriodSeconds == nil || full.Spec.Containers[0].ImagePullPolicy == "" {
		t.Error("fitted for a backend declaring both, the pod lost its grace period or pull policy")
	}
}
