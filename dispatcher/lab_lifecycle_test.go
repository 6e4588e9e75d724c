package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"
	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// processGone tells whether pid has exited: no such process, or a zombie not reaped yet.
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// The trial that found backends outliving a SIGKILLed dispatcher and bringing deleted pods back, as a test:
// crash-looping pods on each real backend, the dispatcher killed with SIGKILL, its backends gone within
// seconds, a new dispatcher on the same data directory deleting the pods, and 20 s later nothing of them
// left on any engine nor in any pod directory. Everything it starts and kills is its own (ports, data
// directory, instance id, the processes it recorded), so it runs beside the other tests: its 20 s of watching
// for a resurrection no longer add to the package's time.
func TestLabNoResurrectionAfterDispatcherKill(t *testing.T) {
	t.Parallel()
	for _, lb := range labBackends {
		lb.require(t)
	}
	dir := t.TempDir()
	disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
	bins := map[string]string{}
	var backends []map[string]any
	for _, lb := range labBackends {
		bins[lb.name] = labtest.BuildBackend(t, "./cmd/backend-"+lb.name)
		backends = append(backends, map[string]any{"name": lb.name, "binary": bins[lb.name], "config": lb.config})
	}
	apiAddr, metricsAddr := labtest.FreeAddr(t), labtest.FreeAddr(t)
	instance := fmt.Sprintf("resurrect-test-%d", time.Now().UnixNano())
	dataDir := filepath.Join(dir, "data")
	raw, err := yaml.Marshal(map[string]any{
		"instance": instance, "data_dir": dataDir,
		"listen":      map[string]any{"tcp": apiAddr},
		"metrics":     map[string]any{"listen": metricsAddr},
		"log":         map[string]any{"level": "debug"},
		"routing":     map[string]any{"default": "docker"},
		"supervision": map[string]any{"backoff_initial": "500ms", "backoff_max": "2s"},
		"backends":    backends,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	var pods []*v1.Pod
	// A failure before the deletes leaves crash-looping pods no dispatcher will delete: removed here, once
	// the dispatchers (whose cleanups come later, so run earlier) are stopped.
	t.Cleanup(func() { removeInstanceLeftovers(t, instance, pods) })
	first := startDispatcherAt(t, disp, cfgPath, apiAddr, metricsAddr, bins)
	for _, lb := range labBackends {
		p := labPod(fmt.Sprintf("resurrect-%s-%d", lb.name, time.Now().UnixNano()), "echo crashing; sleep 1; exit 1")
		p.Spec.RestartPolicy = v1.RestartPolicyAlways
		grace := int64(1)
		p.Spec.TerminationGracePeriodSeconds = &grace
		p.Annotations = map[string]string{"dispatcher.interlink.eu/backend": lb.name}
		if code, body := first.do("POST", "/create", createBody(p)); code != 200 {
			t.Fatalf("create on %s: %d %s", lb.name, code, body)
		}
		pods = append(pods, p)
	}
	// The Docker pod crash-loops (its runner restarts it) before the kill.
	deadline := time.Now().Add(time.Minute)
	for restarts := int32(0); restarts < 1; {
		code, body := first.do("POST", "/status", []*v1.Pod{pods[0]})
		var st []interlink.PodStatus
		if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st) != 1 || len(st[0].Containers) != 1 {
			t.Fatalf("status: %d %s", code, body)
		}
		restarts = st[0].Containers[0].RestartCount
		if time.Now().After(deadline) {
			t.Fatalf("the Docker pod did not restart within a minute: %s", body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	pids := map[string]int{}
	for _, lb := range labBackends {
		if pids[lb.name] = first.backendPID(lb.name); pids[lb.name] == 0 {
			t.Fatalf("no %s backend process under the dispatcher", lb.name)
		}
	}

	// Whatever happens, no backend of this test outlives it.
	defer func() {
		for _, pid := range pids {
			if !processGone(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}()
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.finished
	killed := time.Now()
	for name, pid := range pids {
		for !processGone(pid) {
			if time.Since(killed) > 5*time.Second {
				t.Fatalf("backend %s (pid %d) still runs 5 s after its dispatcher was SIGKILLed", name, pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("every backend was gone %s after the dispatcher was SIGKILLed", time.Since(killed).Round(10*time.Millisecond))

	second := startDispatcherAt(t, disp, cfgPath, apiAddr, metricsAddr, bins)
	for _, p := range pods {
		if code, body := second.do("POST", "/delete", p); code != 200 {
			t.Fatalf("delete %s: %d %s", p.Name, code, body)
		}
	}
	time.Sleep(20 * time.Second)

	for _, p := range pods {
		uid := string(p.UID)
		if left := dockerObjects(t, uid); len(left) > 0 {
			t.Errorf("Docker still has %v of deleted pod %s", left, uid)
		}
		if left := podmanObjects(t, uid); len(left) > 0 {
			t.Errorf("Podman still has %v of deleted pod %s", left, uid)
		}
		if out, err := exec.Command("squeue", "-h", "-n", uid, "-o", "%i %T").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("SLURM still has jobs of deleted pod %s: %q %v", uid, out, err)
		}
		filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == uid {
				t.Errorf("a directory of deleted pod %s is left: %s", uid, path)
				return fs.SkipDir
			}
			return nil
		})
	}
	if strings.Contains(strings.Join(second.stderr.Lines(), "\n"), "stopping the earlier process") {
		t.Error("the new dispatcher's backends had to stop old ones: they did not die with their dispatcher")
	}
}

// dockerObjects lists the containers Docker has for pod uid.
func dockerObjects(t *testing.T, uid string) []string {
	t.Helper()
	cli, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", pod.LabelPodUID+"="+uid))})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, "container "+strings.Join(c.Names, ","))
	}
	return out
}

// podmanObjects lists the containers and pods the Podman service has for pod uid.
func podmanObjects(t *testing.T, uid string) []string {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", labtest.PodmanSocket)
	}}}
	filter := url.QueryEscape(fmt.Sprintf(`{"label":["%s=%s"]}`, pod.LabelPodUID, uid))
	var out []string
	for _, kind := range []string{"containers", "pods"} {
		resp, err := hc.Get("http://podman/v4.0.0/libpod/" + kind + "/json?all=true&filters=" + filter)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var list []map[string]any
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatalf("podman %s: %v %s", kind, err, body)
		}
		for _, o := range list {
			out = append(out, fmt.Sprintf("%s %v", strings.TrimSuffix(kind, "s"), o["Names"]))
		}
	}
	return out
}

// removeInstanceLeftovers removes, straight from the engines, whatever is labelled with the dispatcher
// instance (containers on Docker, pods and containers on Podman) and the SLURM jobs of pods.
func removeInstanceLeftovers(t *testing.T, instance string, pods []*v1.Pod) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if cli, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation()); err == nil {
		cs, _ := cli.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", pod.LabelInstance+"="+instance))})
		for _, c := range cs {
			cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
		cli.Close()
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", labtest.PodmanSocket)
	}}}
	filter := url.QueryEscape(fmt.Sprintf(`{"label":["%s=%s"]}`, pod.LabelInstance, instance))
	if resp, err := hc.Get("http://podman/v4.0.0/libpod/pods/json?filters=" + filter); err == nil {
		var list []struct{ Id string }
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		for _, p := range list {
			req, _ := http.NewRequestWithContext(ctx, "DELETE", "http://podman/v4.0.0/libpod/pods/"+p.Id+"?force=true", nil)
			if resp, err := hc.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}
	for _, p := range pods {
		exec.Command("scancel", "--name", string(p.UID)).Run()
	}
}
