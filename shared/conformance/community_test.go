package conformance

import (
	"os/exec"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Every community pod must pass the pod layer's whitelist on a backend that declares everything the set
// uses: the pods carry the API server's defaults, which no backend may refuse.
func TestCommunityPodsValidate(t *testing.T) {
	caps := backend.Capabilities{
		VolumeKinds: []string{"configMap", "secret", "projected", "downwardAPI", "emptyDir"},
		Features: []string{backend.FeatureInitContainers, backend.FeatureMultipleContainers, backend.FeaturePorts,
			backend.FeatureEmptyDirSizeLimit, backend.FeatureImagePullPolicy, backend.FeatureRestartPolicyAlways,
			backend.FeatureTerminationGrace, backend.FeatureProbes, backend.FeatureLifecycleHooks},
	}
	names := map[string]bool{}
	for _, s := range CommunityPods() {
		if names[s.Name] {
			t.Errorf("scenario %s appears twice", s.Name)
		}
		names[s.Name] = true
		for _, cp := range s.Pods {
			if err := pod.Validate(cp.Pod, caps, "test"); err != nil {
				t.Errorf("%s: pod %s: %v", s.Name, cp.Pod.Name, err)
			}
			for _, lc := range cp.Logs {
				if pod.FindContainer(cp.Pod, lc.Container) == nil {
					t.Errorf("%s: a log check names container %q, which pod %s lacks", s.Name, lc.Container, cp.Pod.Name)
				}
			}
		}
	}
}

// The create request carries the objects env and envFrom name, on the container that names them.
func TestCommunityRequestCarriesEnvObjects(t *testing.T) {
	for _, s := range CommunityPods() {
		switch s.Name {
		case Community080ConfigMapSecret, Community085SecretEnvFrom:
		default:
			continue
		}
		req := s.Request(s.Pods[0].Pod)
		if len(req.Containers) != 1 {
			t.Fatalf("%s: %d retrieved containers", s.Name, len(req.Containers))
		}
		rc := req.Containers[0]
		if len(rc.Secrets) != 2 && s.Name == Community085SecretEnvFrom {
			t.Errorf("%s: %d secrets sent, want 2", s.Name, len(rc.Secrets))
		}
		if s.Name == Community080ConfigMapSecret && (len(rc.ConfigMaps) != 1 || len(rc.Secrets) != 1) {
			t.Errorf("%s: sent %d configMaps and %d secrets, want one each", s.Name, len(rc.ConfigMaps), len(rc.Secrets))
		}
	}
}

// The env-quotes script itself passes when the values arrive exactly and fails when one is off: run on the
// host's python3 (skipped without one).
func TestEnvQuotesScript(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on this host")
	}
	var c v1.Container
	for _, s := range CommunityPods() {
		if s.Name == Community105EnvQuotes {
			c = s.Pods[0].Pod.Spec.Containers[0]
		}
	}
	run := func(env []v1.EnvVar) (string, error) {
		cmd := exec.Command(py, "-c", c.Args[0])
		for _, e := range env {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(c.Env)
	if err != nil || !strings.Contains(out, "ENV_QUOTES_TEST_PASSED") {
		t.Fatalf("with the exact values the script fails (%v):\n%s", err, out)
	}
	for _, drop := range []string{"EMPTY_STRING", "NEWLINE_WITH_QUOTES"} {
		var env []v1.EnvVar
		for _, e := range c.Env {
			if e.Name != drop {
				env = append(env, e)
			}
		}
		if out, err := run(env); err == nil || strings.Contains(out, "ENV_QUOTES_TEST_PASSED") {
			t.Errorf("without %s the script passes:\n%s", drop, out)
		}
	}
}
