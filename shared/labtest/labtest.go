// Package labtest lets integration tests require a real engine of the test lab (deploy/lab/lab.sh).
// Under CI=true a missing engine fails the test with the lab's status line for it; elsewhere the test is
// skipped with a sentence that says how to start the lab.
package labtest

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Addresses of the lab's services.
const (
	DockerSocket = "/var/run/docker.sock"
	PodmanSocket = "/run/podman/podman.sock"
	RegistryAddr = "127.0.0.1:5000"
	BusyboxImage = "busybox:latest"
	PythonImage  = "python:3-slim"
	// MirrorImage is the tag the mirror tests remove and pull again; no other test uses it, since a forced
	// removal pulls an image from under a test that is creating a container of it (Podman's even removes
	// the containers).
	MirrorImage   = "busybox:stable"
	labScriptPath = "deploy/lab/lab.sh"
)

// RequireDocker requires the lab's Docker Engine.
func RequireDocker(t testing.TB) {
	t.Helper()
	require(t, "docker", pingUnix(DockerSocket, "/_ping"))
}

// RequirePodman requires the lab's Podman REST service.
func RequirePodman(t testing.TB) {
	t.Helper()
	require(t, "podman", pingUnix(PodmanSocket, "/v4.0.0/libpod/_ping"))
}

// RequireSLURM requires the lab's SLURM cluster with at least one node that can take jobs.
func RequireSLURM(t testing.TB) {
	t.Helper()
	require(t, "slurm", slurmUp())
}

// RequireRegistry requires the lab's local registry.
func RequireRegistry(t testing.TB) {
	t.Helper()
	require(t, "registry", pingTCP(RegistryAddr, "/v2/"))
}

// InCI reports whether the tests run under CI=true, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

func require(t testing.TB, service string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if InCI() {
		t.Fatalf("%s is required under CI=true and is not usable: %v\nlab status: %s", service, err, StatusLine(service))
	}
	t.Skipf("%s is not usable (%v); start the lab with `bash %s up` (as root) to run this test", service, err, labScriptPath)
}

// StatusLine returns the lab script's status line for one service, or why it could not be had.
func StatusLine(service string) string {
	script := filepath.Join(RepoRoot(), labScriptPath)
	out, err := exec.Command("bash", script, "status").CombinedOutput()
	if err != nil && len(out) == 0 {
		return "could not run " + script + ": " + err.Error()
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), service) {
			return strings.TrimSpace(line)
		}
	}
	return strings.TrimSpace(string(out))
}

// RepoRoot returns the root of the project's checkout.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func pingUnix(socket, path string) error {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}
	resp, err := c.Get("http://unix" + path)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusError{socket, resp.Status}
	}
	return nil
}

func pingTCP(addr, path string) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusError{addr, resp.Status}
	}
	return nil
}

// slurmOutOfService are the prefixes of the node states (sinfo %T) in which a node takes no jobs.
var slurmOutOfService = []string{"down", "drain", "fail", "future", "inval", "unknown", "maint", "reboot", "power"}

// nodeTakesJobs tells whether a node in state (sinfo %T) takes jobs: unless it is out of service. Busy states
// (mixed, allocated, completing, planned for a queued job by the backfill scheduler) do, as the SLURM
// backend's own check has it.
func nodeTakesJobs(state string) bool {
	s := strings.TrimRight(state, "*~#!%$@^-")
	return !slices.ContainsFunc(slurmOutOfService, func(p string) bool { return strings.HasPrefix(s, p) })
}

func slurmUp() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sinfo", "-h", "-o", "%T").CombinedOutput()
	if err != nil {
		return &statusError{"sinfo", strings.TrimSpace(string(out)) + " " + err.Error()}
	}
	for _, state := range strings.Fields(string(out)) {
		if nodeTakesJobs(state) {
			return nil
		}
	}
	return &statusError{"sinfo", "no node can take jobs: " + strings.TrimSpace(string(out))}
}

type statusError struct{ what, status string }

func (e *statusError) Error() string { return e.what + ": " + e.status }
