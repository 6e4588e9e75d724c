package dispatcher

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
	"sigs.k8s.io/yaml"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// procDispatcher is the interlink-dispatcher command running over the real backends of the lab.
type procDispatcher struct {
	t        *testing.T
	cmd      *exec.Cmd
	api      string // http://host:port of the interLink API
	metrics  string // http://host:port of the metrics listener
	bins     map[string]string
	stderr   *labtest.Buffer
	finished chan struct{}
}

// startDispatcherAt starts the dispatcher command with the config file cfgPath (made by the caller, so
// that a second start finds the same instance and data directory), waiting until it is ready.
func startDispatcherAt(t *testing.T, disp, cfgPath, apiAddr, metricsAddr string, bins map[string]string) *procDispatcher {
	t.Helper()
	d := &procDispatcher{t: t, bins: bins, stderr: &labtest.Buffer{}, finished: make(chan struct{}),
		api: "http://" + apiAddr, metrics: "http://" + metricsAddr}
	d.cmd = exec.Command(disp, "--config", cfgPath)
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.finished) }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.finished:
		case <-time.After(40 * time.Second):
			d.cmd.Process.Kill()
			<-d.finished
		}
		if t.Failed() {
			t.Logf("dispatcher (pid %d) log (last lines):\n%s", d.cmd.Process.Pid, tail(d.stderr.Lines(), 60))
		}
	})
	d.waitReady(2 * time.Minute)
	return d
}

// startDispatcherProcess builds the command and the three backends and starts it with log.format json,
// a separate metrics listener, and a slow first restart so that a test sees a killed backend down.
func startDispatcherProcess(t *testing.T) *procDispatcher {
	t.Helper()
	dir := t.TempDir()
	bins := map[string]string{}
	disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
	for _, lb := range labBackends {
		bins[lb.name] = labtest.BuildBackend(t, "./cmd/backend-"+lb.name)
	}
	apiAddr, metricsAddr := labtest.FreeAddr(t), labtest.FreeAddr(t)
	var backends []map[string]any
	for _, lb := range labBackends {
		backends = append(backends, map[string]any{"name": lb.name, "binary": bins[lb.name], "config": lb.config})
	}
	cfg := map[string]any{
		"instance":    fmt.Sprintf("obs-test-%d", time.Now().UnixNano()),
		"data_dir":    filepath.Join(dir, "data"),
		"listen":      map[string]any{"tcp": apiAddr},
		"metrics":     map[string]any{"listen": metricsAddr},
		"log":         map[string]any{"format": "json", "level": "debug"},
		"routing":     map[string]any{"default": "docker"},
		"supervision": map[string]any{"backoff_initial": "4s", "backoff_max": "8s"},
		"backends":    backends,
	}
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return startDispatcherAt(t, disp, cfgPath, apiAddr, metricsAddr, bins)
}

func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// readyz returns /readyz's status code and body.
func (d *procDispatcher) readyz() (int, Readiness, string) {
	resp, err := http.Get(d.metrics + "/readyz")
	if err != nil {
		return 0, Readiness{}, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var rd Readiness
	json.Unmarshal(body, &rd)
	return resp.StatusCode, rd, string(body)
}

func (d *procDispatcher) waitReady(within time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, _, body := d.readyz()
		if code == 200 {
			return
		}
		select {
		case <-d.finished:
			d.t.Fatalf("the dispatcher exited:\n%s", tail(d.stderr.Lines(), 40))
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("not ready within %s: %d %s", within, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *procDispatcher) do(method, path string, body any) (int, string) {
	d.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		d.t.Fatal(err)
	}
	req, _ := http.NewRequest(method, d.api+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SessionHeader, "ObsTest#1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func (d *procDispatcher) phase(p *v1.Pod) string {
	d.t.Helper()
	code, body := d.do("POST", "/status", []*v1.Pod{p})
	var st []interlink.PodStatus
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st) != 1 {
		d.t.Fatalf("status: %d %s", code, body)
	}
	c := st[0].Containers[0].State
	switch {
	case c.Running != nil:
		return "Running"
	case c.Terminated != nil && c.Terminated.ExitCode == 0:
		return "Succeeded"
	case c.Terminated != nil:
		return "Failed"
	}
	return "Pending"
}

// backendPID finds the process of the named backend among the dispatcher's children.
func (d *procDispatcher) backendPID(name string) int {
	d.t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(d.cmd.Process.Pid) {
			continue
		}
		if exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); exe == d.bins[name] {
			return pid
		}
	}
	d.t.Fatalf("no process of backend %s under the dispatcher (pid %d)", name, d.cmd.Process.Pid)
	return 0
}

// waitSeries polls /metrics until ok holds for the scrape, failing after within with the last one.
func (d *procDispatcher) waitSeries(what string, within time.Duration, ok func(samples) bool) samples {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := scrapeURL(d.t, d.metrics+"/metrics")
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s not seen within %s; scrape:\n%s", what, within, s.grep("interlink_dispatcher_backend_up"))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// The real command over the three real backends: pods on each move the series (pods by phase, creates,
// create-to-running, RPC durations, capacity, the backends' own series with their backend label), the
// scrape passes promtool, and a backend killed with SIGKILL is seen down (up 0, /readyz 503 naming it)
// and back (restarts_total risen, ready again). Its logs are JSON with each key once, and every line about
// a pod names it.
func TestLabObservability(t *testing.T) {
	t.Parallel()
	labtest.RequireDocker(t)
	labtest.RequirePodman(t)
	labtest.RequireSLURM(t)
	d := startDispatcherProcess(t)

	pods := map[string]*v1.Pod{}
	for _, lb := range labBackends {
		p := labPod(fmt.Sprintf("obs-%s-%d", lb.name, time.Now().UnixNano()), "echo observed; sleep 8")
		p.Annotations = map[string]string{DefaultRoutingAnnotation: lb.name}
		if code, body := d.do("POST", "/create", createBody(p)); code != 200 {
			t.Fatalf("create on %s: %d %s", lb.name, code, body)
		}
		pods[lb.name] = p
		defer d.do("POST", "/delete", p)
	}
	// Poll like the virtual kubelet until each pod has been seen Running, then Succeeded.
	seenRunning := map[string]bool{}
	deadline := time.Now().Add(3 * time.Minute)
	for done := 0; done < len(pods); {
		done = 0
		for name, p := range pods {
			switch d.phase(p) {
			case "Running":
				if !seenRunning[name] {
					seenRunning[name] = true
					s := scrapeURL(t, d.metrics+"/metrics")
					s.want(t, 1, "interlink_dispatcher_pods", "backend="+name, "phase=Running")
				}
			case "Succeeded":
				done++
			case "Failed":
				t.Fatalf("the pod on %s failed", name)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pods not all Succeeded within 3 minutes; seen running: %v", seenRunning)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code, body := d.do("POST", "/status", []any{}); code != 200 { // the ping: capacity
		t.Fatalf("ping: %d %s", code, body)
	}

	s := scrapeURL(t, d.metrics+"/metrics")
	for _, lb := range labBackends {
		b := "backend=" + lb.name
		s.want(t, 1, "interlink_dispatcher_backend_up", b)
		s.want(t, 1, "interlink_dispatcher_pod_creates_total", b, "outcome=ok")
		s.want(t, 1, "interlink_dispatcher_pods", b, "phase=Succeeded")
		s.want(t, 0, "interlink_dispatcher_pods", b, "phase=Running")
		s.want(t, 1, "interlink_dispatcher_routing_decisions_total", "rule=annotation", b)
		if n := s.must(t, "interlink_dispatcher_backend_rpc_duration_seconds_count", b, "method=Create"); n != 1 {
			t.Errorf("%s: %v Create calls", lb.name, n)
		}
		if n := s.must(t, "interlink_dispatcher_backend_rpc_duration_seconds_count", b, "method=Status"); n < 2 {
			t.Errorf("%s: %v Status calls", lb.name, n)
		}
		if seenRunning[lb.name] {
			s.want(t, 1, "interlink_dispatcher_pod_create_to_running_seconds_count", b)
		}
		if n := s.must(t, "interlink_dispatcher_reconciliations_total", b, "outcome=ok"); n < 1 {
			t.Errorf("%s: not reconciled", lb.name)
		}
		if !strings.Contains(s.text, "interlink_dispatcher_backend_capacity_cpu_cores{backend=\""+lb.name+"\"}") {
			t.Errorf("%s reported no CPU capacity:\n%s", lb.name, s.grep("capacity"))
		}
	}
	s.want(t, 3, "interlink_dispatcher_journal_pods")
	if len(seenRunning) == 0 {
		t.Error("no pod was seen Running; the create-to-running histogram is untested")
	}
	// The backends' own series, with their backend label (podman exports none yet).
	for _, want := range []string{
		`interlink_backend_docker_engine_request_duration_seconds_count{backend="docker",`,
		`interlink_backend_slurm_squeue_invocations_total{backend="slurm"}`,
		`interlink_backend_slurm_sbatch_invocations_total{backend="slurm"} 1`,
	} {
		if !strings.Contains(s.text, want) {
			t.Errorf("the scrape lacks %s:\n%s", want, s.grep("interlink_backend_"))
		}
	}
	promtoolCheckMetrics(t, s.text)
	if out, err := exec.Command(promtool(t), "check", "rules", filepath.Join("..", "deploy", "observability", "alerts.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	// SIGKILL a backend: seen down, then back.
	victim := "podman"
	restartsBefore := s.must(t, "interlink_dispatcher_backend_restarts_total", "backend="+victim)
	if err := syscall.Kill(d.backendPID(victim), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.waitSeries(victim+" down", 20*time.Second, func(s samples) bool {
		v, _ := s.get("interlink_dispatcher_backend_up", "backend="+victim)
		return v == 0
	})
	code, rd, body := d.readyz()
	if code != 503 || rd.Ready || !strings.Contains(strings.Join(rd.Reasons, " "), `"`+victim+`"`) {
		t.Fatalf("readyz with %s killed: %d %s", victim, code, body)
	}
	for _, b := range rd.Backends {
		if (b.Name == victim) != (b.State == "down") || b.Version == "" && b.State == "up" {
			t.Fatalf("readyz backends with %s killed: %s", victim, body)
		}
	}
	s = d.waitSeries(victim+" back", 2*time.Minute, func(s samples) bool {
		v, _ := s.get("interlink_dispatcher_backend_up", "backend="+victim)
		return v == 1
	})
	if n := s.must(t, "interlink_dispatcher_backend_restarts_total", "backend="+victim); n <= restartsBefore {
		t.Fatalf("restarts_total of %s: %v, was %v", victim, n, restartsBefore)
	}
	if ts := s.must(t, "interlink_dispatcher_backend_last_restart_timestamp_seconds", "backend="+victim); ts < float64(time.Now().Add(-2*time.Minute).Unix()) {
		t.Fatalf("last restart of %s at %v", victim, ts)
	}
	d.waitReady(30 * time.Second)

	for _, p := range pods {
		if code, body := d.do("POST", "/delete", p); code != 200 {
			t.Fatalf("delete: %d %s", code, body)
		}
	}
	s = scrapeURL(t, d.metrics+"/metrics")
	for _, lb := range labBackends {
		s.want(t, 1, "interlink_dispatcher_pod_deletes_total", "backend="+lb.name, "outcome=ok")
	}
	s.want(t, 0, "interlink_dispatcher_journal_pods")

	// The log: JSON lines, no key twice (backend= is written once on re-emitted backend lines), every
	// line about a pod naming it, and backend lines tagged with their backend.
	lines := d.stderr.Lines()
	for _, l := range lines {
		if dup := duplicateKey(l); dup != "" {
			t.Errorf("log line has the key %q twice: %s", dup, l)
		}
	}
	t.Run("pod lines name the pod", func(t *testing.T) {
		// The dispatcher writes pod_uid, namespace, name; backends' lines are accepted with uid for pod_uid
		// and pod for name, but must name all three too.
		n := 0
		for _, l := range lines {
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) != nil {
				t.Fatalf("log line is not JSON: %q", l)
			}
			uid := first(rec, "pod_uid", "uid")
			if uid == "" {
				continue
			}
			n++
			if first(rec, "namespace") == "" || first(rec, "name", "pod") == "" {
				t.Errorf("log line about pod %s lacks its namespace or name: %s", uid, l)
			}
		}
		if n < 6 {
			t.Errorf("only %d log lines name a pod", n)
		}
	})
	tagged := map[string]bool{}
	for _, l := range lines {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil {
			if b, ok := rec["backend"].(string); ok {
				tagged[b] = true
			}
		}
	}
	for _, lb := range labBackends {
		if !tagged[lb.name] {
			t.Errorf("no log line is tagged backend=%s", lb.name)
		}
	}
}

// first returns the first of keys rec holds as a non-empty string.
func first(rec map[string]any, keys ...string) string {
	for _, k := range keys {
		if v, ok := rec[k].(string); ok && v != "" {
			return v
		}
	}
	return ""
}
