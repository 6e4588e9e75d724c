package podman

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/backends/docker"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim/shimtest"
)

// TestDockerAndPodmanAgree: the same pod manifest gives the same statuses and logs on Docker and Podman. Every
// community scenario runs on both lab engines (each backend built with its own constructor, over fresh copies of
// the same pods) and the outcomes are compared pod by pod: the phase the virtual kubelet computes, each
// container's state kind, exit code and reason, and the log text (for pods that have ended, the same lines,
// whose order may differ only because stdout and stderr merge in either order; for a pod still running, whose
// probes print at times of their own, the same distinct lines).
func TestDockerAndPodmanAgree(t *testing.T) {
	t.Parallel()
	labtest.RequireDocker(t)
	labtest.RequirePodman(t)
	pb := newTestBackend(t, testEnv(t))
	db := newDockerBackend(t)
	for _, s := range conformance.CommunityPods() {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			var onPodman, onDocker []conformance.CommunityOutcome
			t.Run("engines", func(t *testing.T) {
				t.Run("podman", func(t *testing.T) {
					t.Parallel()
					onPodman = conformance.RunCommunityScenario(t, pb, s, conformance.CommunityOptions{})
				})
				t.Run("docker", func(t *testing.T) {
					t.Parallel()
					onDocker = conformance.RunCommunityScenario(t, db, scenario(t, s.Name), conformance.CommunityOptions{})
				})
			})
			if t.Failed() {
				return
			}
			for i := range onPodman {
				comparePods(t, onPodman[i], onDocker[i])
			}
		})
	}
}

// scenario returns a fresh copy (new pods, new UIDs) of the community scenario name.
func scenario(t *testing.T, name string) conformance.CommunityScenario {
	for _, s := range conformance.CommunityPods() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no community scenario %q", name)
	return conformance.CommunityScenario{}
}

func comparePods(t *testing.T, p, d conformance.CommunityOutcome) {
	t.Helper()
	name := p.Pod.Labels["app"]
	if p.Phase != d.Phase {
		t.Errorf("pod %s: phase %s on Podman, %s on Docker", name, p.Phase, d.Phase)
	}
	ps := append(append([]v1.ContainerStatus{}, p.Status.InitContainers...), p.Status.Containers...)
	ds := append(append([]v1.ContainerStatus{}, d.Status.InitContainers...), d.Status.Containers...)
	if len(ps) != len(ds) {
		t.Fatalf("pod %s: %d container statuses on Podman, %d on Docker", name, len(ps), len(ds))
	}
	for i := range ps {
		if a, b := stateSummary(ps[i]), stateSummary(ds[i]); a != b {
			t.Errorf("pod %s container %s: %s on Podman, %s on Docker", name, ps[i].Name, a, b)
		}
	}
	ended := p.Phase == v1.PodSucceeded || p.Phase == v1.PodFailed
	for c, pl := range p.Logs {
		dl := d.Logs[c]
		switch {
		case pl == dl:
		case ended && slices.Equal(sortedLines(pl), sortedLines(dl)):
			// Same lines in another order: stdout and stderr are two pipes that each engine reads on its own,
			// so lines written to both within the same instant (a buffered print flushed at exit beside a
			// traceback) merge in either order, on either engine, from run to run.
			t.Logf("pod %s container %s: the same lines, merged from stdout and stderr in another order", name, c)
		case ended:
			t.Errorf("pod %s container %s: the logs differ\n--- Podman:\n%s\n--- Docker:\n%s", name, c, pl, dl)
		case !slices.Equal(distinctLines(pl), distinctLines(dl)):
			t.Errorf("pod %s container %s: the logs have different lines\n--- Podman:\n%s\n--- Docker:\n%s", name, c, pl, dl)
		}
	}
}

// stateSummary is what must agree of a container's state: its kind, and for a terminated one its exit code
// and reason (messages carry engine details, such as ids, and may differ).
func stateSummary(cs v1.ContainerStatus) string {
	switch s := cs.State; {
	case s.Terminated != nil:
		return fmt.Sprintf("terminated(%d, %s)", s.Terminated.ExitCode, s.Terminated.Reason)
	case s.Running != nil:
		return fmt.Sprintf("running(ready %v)", cs.Ready)
	case s.Waiting != nil:
		return "waiting(" + s.Waiting.Reason + ")"
	}
	return "no state"
}

func sortedLines(s string) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	slices.Sort(lines)
	return lines
}

func distinctLines(s string) []string { return slices.Compact(sortedLines(s)) }

// newDockerBackend builds the Docker backend with its own constructor on the lab's Docker Engine, with the
// pause binary it needs built from cmd/pause and the same shim as the Podman backend's; every pod it still
// has is deleted at the end.
func newDockerBackend(t *testing.T) backend.Backend {
	t.Helper()
	cfg, err := json.Marshal(map[string]any{"pause_binary": labtest.BuildBinary(t, labtest.PausePackage), "shim": shimtest.Build(t)})
	if err != nil {
		t.Fatal(err)
	}
	env := backend.Env{Name: "docker", Instance: "cmp-" + randHex(6), Config: cfg, DataDir: t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := docker.New(ctx, env)
	if err != nil {
		t.Fatalf("the Docker backend does not start: %v", err)
	}
	t.Cleanup(func() {
		conformance.DeleteAll(t, b, time.Second)
		if c, ok := b.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	})
	return b
}
