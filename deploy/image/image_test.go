// Package image holds the test of the container image that deploy/image/build.sh (`make image`) builds;
// the image itself is the Dockerfile and the files beside it.
package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// imageUID is the non-root user the image runs as (deploy/image/Dockerfile).
const imageUID = 65532

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// The image builds with the lab's Docker Engine and nothing else (build.sh, as `make image` runs it), runs
// as its non-root user with the Docker socket mounted and a config enabling the Docker backend, answers
// /readyz through a published port, and runs a pod on the Docker backend through the API: Running, then
// deleted, its containers gone; the engine's HEALTHCHECK finds it healthy.
func TestImageRunsAPodOnDocker(t *testing.T) {
	labtest.RequireDocker(t)
	start := time.Now()
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	image := "interlink-dispatcher-imagetest:" + suffix
	build := exec.Command("bash", filepath.Join(labtest.RepoRoot(), "deploy", "image", "build.sh"))
	build.Env = append(os.Environ(), "IMAGE=interlink-dispatcher-imagetest", "TAG="+suffix, "VERSION=v0.0.0-imagetest")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/image/build.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", image).Run() })
	t.Logf("image %s built in %s", image, time.Since(start).Round(time.Second))

	if got := docker(t, "run", "--rm", image, "--version"); !strings.HasPrefix(got, "interlink-dispatcher v0.0.0-imagetest (commit ") {
		t.Errorf("--version in the image: %q", got)
	}
	if got := docker(t, "image", "inspect", "-f", "{{.Config.User}} {{json .Config.Healthcheck.Test}}", image); !strings.HasPrefix(got, fmt.Sprintf("%d:%d ", imageUID, imageUID)) ||
		!strings.Contains(got, `"health"`) {
		t.Errorf("the image's user and HEALTHCHECK: %s", got)
	}

	// The data directory has the same path on the host and in the container (the engine bind-mounts pod
	// files by host path), belongs to the image's user, and holds a copy of the image's own shim, as the
	// README says to set it up.
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, imageUID, imageUID); err != nil {
		t.Fatal(err)
	}
	tmp := docker(t, "create", image)
	docker(t, "cp", tmp+":/usr/local/bin/interlink-shim", filepath.Join(data, "interlink-shim"))
	docker(t, "rm", tmp)

	// Behind -p, connections come from the bridge network.
	bridge := docker(t, "network", "inspect", "bridge", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}")
	instance := "imagetest-" + suffix
	cfg := fmt.Sprintf(`instance: %s
data_dir: %s
listen: {tcp: "0.0.0.0:4000"}
access: {allow_networks: [127.0.0.0/8, %s]}
routing: {default: docker}
log: {level: debug}
backends:
  - name: docker
    binary: /usr/local/bin/backend-docker
    config: {shim: %s}
`, instance, data, strings.Join(strings.Fields(bridge), ", "), filepath.Join(data, "interlink-shim"))
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(labtest.DockerSocket, &st); err != nil {
		t.Fatal(err)
	}

	name := "interlink-dispatcher-imagetest-" + suffix
	docker(t, "run", "-d", "--name", name,
		"--group-add", strconv.Itoa(int(st.Gid)),
		"-v", labtest.DockerSocket+":/var/run/docker.sock",
		"-v", data+":"+data,
		"-v", cfgPath+":/etc/interlink-dispatcher/config.yaml:ro",
		"-p", "127.0.0.1::4000",
		image)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "60", name).CombinedOutput()
			t.Logf("docker logs %s:\n%s", name, out)
		}
		exec.Command("docker", "rm", "-f", name).Run()
		// Whatever a failed run left of the pod.
		if ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+pod.LabelInstance+"="+instance).Output(); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...).Run()
		}
	})
	port := docker(t, "port", name, "4000/tcp")
	base := "http://" + port
	if !strings.HasPrefix(port, "127.0.0.1:") {
		t.Fatalf("docker port: %q", port)
	}

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, body := get("/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer 200 within 30s: %d %s", code, body)
		}
	}
	// The dispatcher runs as the image's user, not root.
	pid := docker(t, "inspect", "-f", "{{.State.Pid}}", name)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] != strconv.Itoa(imageUID) {
			t.Errorf("the dispatcher runs as uid %s, not the image's %d", f[1], imageUID)
		}
	}
	// What HEALTHCHECK runs.
	if out, err := exec.Command("docker", "exec", name, "/usr/local/bin/interlink-dispatcher", "health", "--config", "/etc/interlink-dispatcher/config.yaml").CombinedOutput(); err != nil {
		t.Errorf("the HEALTHCHECK command in the container: %v\n%s", err, out)
	}

	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{UID: types.UID("imagetest-" + suffix), Name: "imagetest", Namespace: "default"},
		Spec: v1.PodSpec{RestartPolicy: v1.RestartPolicyNever, Containers: []v1.Container{{
			Name: "main", Image: labtest.BusyboxImage, Command: []string{"sh", "-c", "echo up; sleep 3600"},
		}}},
	}
	call := func(method, path string, body any) (int, string) {
		t.Helper()
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(method, base+path, bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call("POST", "/create", interlink.RetrievedPodData{Pod: *p}); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		code, body := call("GET", "/status", []*v1.Pod{p})
		var sts []interlink.PodStatus
		if code != 200 || json.Unmarshal([]byte(body), &sts) != nil || len(sts) != 1 {
			t.Fatalf("status: %d %s", code, body)
		}
		if len(sts[0].Containers) == 1 && sts[0].Containers[0].State.Running != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod is not Running within 30s: %s", body)
		}
	}
	if ids := docker(t, "ps", "-q", "--filter", "label="+pod.LabelInstance+"="+instance); ids == "" {
		t.Errorf("no container of instance %s runs on the engine", instance)
	}

	if code, body := call("POST", "/delete", p); code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if ids := docker(t, "ps", "-aq", "--filter", "label="+pod.LabelInstance+"="+instance); ids != "" {
		t.Errorf("containers of the deleted pod are left: %s", ids)
	}
	// The engine's own run of the HEALTHCHECK (every 10 s) finds it healthy.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		h := docker(t, "inspect", "-f", "{{.State.Health.Status}}", name)
		if h == "healthy" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's health is %q 30s after the pod ran: %s", h, docker(t, "inspect", "-f", "{{json .State.Health}}", name))
		}
	}
	docker(t, "rm", "-f", name)
	t.Logf("the whole test took %s", time.Since(start).Round(time.Second))
}
