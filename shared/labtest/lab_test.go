package labtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// These tests prove the lab: each engine runs a real workload and pulls through the registry mirror.

func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	RequireDocker(t)
	c, err := client.NewClientWithOpts(client.WithHost("unix://"+DockerSocket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDockerRunsContainer(t *testing.T) {
	c := dockerClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pullDocker(ctx, t, c, BusyboxImage)
	created, err := c.ContainerCreate(ctx, &container.Config{Image: BusyboxImage, Cmd: []string{"sh", "-c", "echo lab-docker-$((6*7))"}},
		nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	if err := c.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := c.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
	select {
	case w := <-waitC:
		if w.StatusCode != 0 {
			t.Fatalf("container exited %d", w.StatusCode)
		}
	case err := <-errC:
		t.Fatal(err)
	}
	logs, err := c.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, logs); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "lab-docker-42" {
		t.Fatalf("container printed %q, want lab-docker-42", got)
	}
}

func pullDocker(ctx context.Context, t *testing.T, c *client.Client, ref string) {
	t.Helper()
	rc, err := c.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	defer rc.Close()
	// The pull's progress stream ends with an error message when it fails.
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return
		} else if err != nil {
			t.Fatal(err)
		}
		if msg.Error != "" {
			t.Fatalf("pull %s: %s", ref, msg.Error)
		}
	}
}

// TestDockerPullsThroughMirror removes the local MirrorImage tag and pulls it again by its Docker Hub name: the
// manifest must come from a registry, and with no internet only the lab's mirror can serve it.
func TestDockerPullsThroughMirror(t *testing.T) {
	c := dockerClient(t)
	RequireRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := c.ImageRemove(ctx, MirrorImage, image.RemoveOptions{Force: true}); err != nil && !strings.Contains(err.Error(), "No such image") {
		t.Fatal(err)
	}
	pullDocker(ctx, t, c, MirrorImage)
	inspect, err := c.ImageInspect(ctx, MirrorImage)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range inspect.RepoDigests {
		if strings.HasPrefix(d, "busybox@sha256:") {
			return
		}
	}
	t.Fatalf("pulled image has no digest from the mirror for its Docker Hub name: %v", inspect.RepoDigests)
}

// podman calls the libpod REST API of the lab's Podman service.
func podman(t *testing.T, method, path string, body any) []byte {
	t.Helper()
	hc := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", PodmanSocket)
		}}}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://d/v4.0.0/libpod"+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, out)
	}
	return out
}

func TestPodmanRunsContainer(t *testing.T) {
	RequirePodman(t)
	podman(t, "POST", "/images/pull?reference="+url.QueryEscape("docker.io/library/busybox:latest"), nil)
	out := podman(t, "POST", "/containers/create", map[string]any{
		"image":   "docker.io/library/busybox:latest",
		"command": []string{"sh", "-c", "echo lab-podman-$((6*7))"},
	})
	var created struct{ Id string }
	if err := json.Unmarshal(out, &created); err != nil {
		t.Fatal(err)
	}
	defer podman(t, "DELETE", "/containers/"+created.Id+"?force=true", nil)
	podman(t, "POST", "/containers/"+created.Id+"/start", nil)
	if code := strings.TrimSpace(string(podman(t, "POST", "/containers/"+created.Id+"/wait?condition=exited", nil))); code != "0" {
		t.Fatalf("container exited %s", code)
	}
	raw := podman(t, "GET", "/containers/"+created.Id+"/logs?stdout=true&stderr=true", nil)
	var logs bytes.Buffer
	if _, err := stdcopy.StdCopy(&logs, &logs, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(logs.String()); got != "lab-podman-42" {
		t.Fatalf("container printed %q, want lab-podman-42", got)
	}
}

func TestPodmanPullsThroughMirror(t *testing.T) {
	RequirePodman(t)
	RequireRegistry(t)
	ref := "docker.io/library/" + MirrorImage
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", PodmanSocket)
	}}}
	req, _ := http.NewRequest("DELETE", "http://d/v4.0.0/libpod/images/"+url.PathEscape(ref)+"?force=true", nil)
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
	}
	out := podman(t, "POST", "/images/pull?reference="+url.QueryEscape(ref), nil)
	if strings.Contains(string(out), `"error"`) {
		t.Fatalf("pull through the mirror failed: %s", out)
	}
	var img struct{ RepoDigests []string }
	if err := json.Unmarshal(podman(t, "GET", "/images/"+url.PathEscape(ref)+"/json", nil), &img); err != nil {
		t.Fatal(err)
	}
	if len(img.RepoDigests) == 0 {
		t.Fatalf("pulled image has no registry digest")
	}
}

func TestSLURMRunsJob(t *testing.T) {
	RequireSLURM(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// --mem: without it SLURM gives the job the whole node's memory, so that it waits for the node to be
	// empty and every job submitted after it (other packages' tests) waits behind it.
	cmd := exec.CommandContext(ctx, "sbatch", "--wait", "--parsable", "--job-name=lab-test", "--time=1", "--mem=16M",
		"--output="+out, "--wrap", "echo lab-slurm-$((6*7)) on $SLURMD_NODENAME")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sbatch --wait: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "lab-slurm-42 on ") {
		t.Fatalf("job wrote %q", b)
	}
}

func TestStatusLineNamesService(t *testing.T) {
	if _, err := os.Stat(filepath.Join(RepoRoot(), labScriptPath)); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"docker", "podman", "slurmd", "registry"} {
		line := StatusLine(svc)
		if !strings.HasPrefix(line, svc) || !(strings.Contains(line, " up ") || strings.Contains(line, " down ")) {
			t.Errorf("status line for %s: %q", svc, line)
		}
	}
}
