package slurm

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// TestConformance runs the shared harness against the lab's real SLURM, with Podman running the containers
// inside the jobs.
func TestConformance(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	conformance.Run(t, b, conformance.Options{
		PodTimeout:  3 * time.Minute,
		CallTimeout: time.Minute,
		GracePeriod: 2 * time.Second,
		Parallel:    true,
		Vanish:      vanishJob,
	})
}

// vanishJob cancels the pod's job (its remote id) with scancel, as an operator would, without the backend
// knowing, and waits until SLURM no longer runs it.
func vanishJob(t testing.TB, _, jobID string) {
	t.Helper()
	if out, err := exec.Command("scancel", jobID).CombinedOutput(); err != nil {
		t.Fatalf("vanish: scancel %s: %v: %s", jobID, err, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := exec.Command("squeue", "--noheader", "--jobs", jobID, "--format", "%T").Output()
		state := strings.TrimSpace(string(out))
		if err != nil || (state != "RUNNING" && state != "COMPLETING" && state != "PENDING" && state != "CONFIGURING") {
			return // ended, or already gone from squeue
		}
		if time.Now().After(deadline) {
			t.Fatalf("vanish: job %s is still %s two minutes after scancel", jobID, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
