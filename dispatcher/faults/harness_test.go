package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// kind is one real backend of the lab, with the engine it needs and its config section.
type kind struct {
	name    string
	require func(testing.TB)
	config  map[string]any
}

var (
	dockerKind = kind{"docker", labtest.RequireDocker, map[string]any{}}
	podmanKind = kind{"podman", labtest.RequirePodman, map[string]any{"uri": "unix://" + labtest.PodmanSocket}}
	// The SLURM jobs run their command on the node (runtime none): the faults here are the dispatcher's, the
	// backend's and slurmctld's, and a podman inside each of dozens of jobs cancelled at once would only add
	// Podman's lock trouble (see deploy/lab/lab.sh) to a lab the other tests share.
	slurmKind = kind{"slurm", labtest.RequireSLURM, map[string]any{"runtime": "none", "default_memory": "64M", "kill_wait": "30s"}}
	allKinds  = []kind{dockerKind, podmanKind, slurmKind}
)

// proc is the interlink-dispatcher command over real backends, with its config and data directory kept so
// that it can be killed and started again on them.
type proc struct {
	t        testing.TB
	instance string
	kinds    []kind
	dataDir  string
	cfgPath  string
	api      string
	bin      string
	bins     map[string]string // backend name → binary
	stderr   *labtest.Buffer
	client   *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// start builds the dispatcher and the backends of kinds, writes a config with an instance name of its own
// (faults-<name>-<time>), starts the command and waits until it is ready. The first kind is the default
// route. Clean-up stops it, ends any backend process of the instance still alive, and removes whatever the
// engines still hold for the instance; what runs stopped before their clean-up left is removed first
// (sweepStale).
func start(t testing.TB, name string, kinds ...kind) *proc {
	t.Helper()
	for _, k := range kinds {
		k.require(t)
		sweepStale(t, k)
	}
	dir := t.TempDir()
	p := &proc{
		t: t, kinds: kinds, dataDir: filepath.Join(dir, "data"), cfgPath: filepath.Join(dir, "config.yaml"),
		instance: instanceName(name, time.Now()),
		bin:      labtest.BuildBinary(t, "./cmd/interlink-dispatcher"),
		bins:     map[string]string{}, stderr: &labtest.Buffer{},
		client: &http.Client{Timeout: 3 * time.Minute},
	}
	addr := labtest.FreeAddr(t)
	p.api = "http://" + addr
	var backends []map[string]any
	for _, k := range kinds {
		p.bins[k.name] = labtest.BuildBackend(t, "./cmd/backend-"+k.name)
		backends = append(backends, map[string]any{"name": k.name, "binary": p.bins[k.name], "config": k.config})
	}
	cfg := map[string]any{
		"instance": p.instance,
		"data_dir": p.dataDir,
		"listen":   map[string]any{"tcp": addr},
		"log":      map[string]any{"level": "info"},
		"routing":  map[string]any{"default": kinds[0].name},
		// A killed backend comes back quickly, so that the creates after the kill meet both a backend down
		// and a restarted one.
		"supervision": map[string]any{"backoff_initial": "500ms", "backoff_max": "2s"},
		"backends":    backends,
	}
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cleanup)
	p.run()
	return p
}

// run starts the command on the config and waits until /readyz says every backend is up.
func (p *proc) run() {
	p.t.Helper()
	cmd := exec.Command(p.bin, "--config", p.cfgPath)
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body, err := p.do("GET", "/readyz", nil)
		if err == nil && code == 200 {
			return
		}
		select {
		case <-done:
			p.t.Fatalf("the dispatcher exited at start:\n%s", p.logTail(40))
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the dispatcher is not ready within 2 minutes: %d %s %v", code, body, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill SIGKILLs the command and waits for it to be gone.
func (p *proc) kill() {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-done
}

// stop ends the command with SIGTERM (it stops its backends, which leave their pods running), with SIGKILL
// after 40 s. It reports whether the stop was clean.
func (p *proc) stop() bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-done:
		return cmd.ProcessState.Success()
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return cmd.ProcessState.Success()
	case <-time.After(40 * time.Second):
		cmd.Process.Kill()
		<-done
		return false
	}
}

func (p *proc) logTail(n int) string {
	lines := p.stderr.Lines()
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cleanup runs even when the test failed: the dispatcher is stopped, any backend of the instance still alive
// is killed (one that outlived its dispatcher would re-create what is removed), and every object the engines
// hold for the instance is removed.
func (p *proc) cleanup() {
	if !p.stop() {
		p.t.Errorf("the dispatcher did not stop cleanly on SIGTERM")
	}
	for pid := range p.backendPIDs() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, k := range p.kinds {
		if n, err := sweep(k, p.instance); err != nil {
			p.t.Logf("clean-up of %s for instance %s: %v", k.name, p.instance, err)
		} else if n > 0 {
			p.t.Logf("clean-up removed %d leftover %s objects of instance %s", n, k.name, p.instance)
		}
	}
	if p.t.Failed() {
		p.t.Logf("dispatcher log (last lines):\n%s", p.logTail(80))
	}
}

// do sends one request to the interLink API, with a body as JSON unless nil. It never fails the test, so
// that it can be called from many goroutines at once.
func (p *proc) do(method, path string, body any) (int, string, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return 0, "", err
		}
	}
	return p.doRaw(method, path, raw)
}

// doRaw sends body, already encoded (nil: none), and returns the answer's code and body.
func (p *proc) doRaw(method, path string, body []byte) (int, string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, p.api+path, rd)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(dispatcher.SessionHeader, "FaultsTest#1")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out), err
}

// create posts the pod as interLink does (a RetrievedPodData object).
func (p *proc) create(pod *v1.Pod) (int, string, error) {
	return p.do("POST", "/create", interlink.RetrievedPodData{Pod: *pod})
}

// delete sends interLink's delete of the pod, with a grace period of one second.
func (p *proc) delete(pod *v1.Pod) (int, string, error) {
	q := pod.DeepCopy()
	grace := int64(1)
	q.DeletionGracePeriodSeconds = &grace
	return p.do("DELETE", "/delete", q)
}

// mustCreateAll creates the pods, a few at a time, and fails the test unless each is answered 200.
func (p *proc) mustCreateAll(pods []*v1.Pod) {
	p.t.Helper()
	for _, f := range parallel(pods, 8, p.create) {
		p.t.Errorf("create: %s", f)
	}
	if p.t.Failed() {
		p.t.FailNow()
	}
}

// mustDeleteAll deletes the pods, a few at a time, and fails the test unless each is answered 200.
func (p *proc) mustDeleteAll(pods []*v1.Pod) {
	p.t.Helper()
	for _, f := range parallel(pods, 8, p.delete) {
		p.t.Errorf("delete: %s", f)
	}
	if p.t.Failed() {
		p.t.FailNow()
	}
}

// parallel calls f for every pod with at most n calls at once and returns a sentence for each answer that
// is not 200.
func parallel(pods []*v1.Pod, n int, f func(*v1.Pod) (int, string, error)) []string {
	var mu sync.Mutex
	var fails []string
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, pod := range pods {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			code, body, err := f(pod)
			if err != nil || code != 200 {
				mu.Lock()
				fails = append(fails, fmt.Sprintf("pod %s: %d %s %v", pod.UID, code, strings.TrimSpace(body), err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Strings(fails)
	return fails
}

// pod is a pod of the instance that runs until deleted, routed to k by the annotation; its UID starts with
// the instance name, which is how its SLURM job is told apart (the job is named after the UID).
func (p *proc) pod(k kind, suffix string) *v1.Pod {
	uid := p.instance + "-" + suffix
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), Name: "faults-" + suffix, Namespace: "faults",
			Annotations: map[string]string{dispatcher.DefaultRoutingAnnotation: k.name}},
		Spec: v1.PodSpec{
			RestartPolicy: v1.RestartPolicyNever,
			Containers: []v1.Container{{Name: "main", Image: labtest.BusyboxImage,
				Command: []string{"sh", "-c", "sleep 3600"}}},
		},
	}
}

// statuses asks /status for the pods in one batch, as the virtual kubelet does.
func (p *proc) statuses(pods []*v1.Pod) ([]interlink.PodStatus, error) {
	code, body, err := p.do("GET", "/status", pods)
	if err != nil {
		return nil, err
	}
	var st []interlink.PodStatus
	if code != 200 {
		return nil, fmt.Errorf("status answered %d: %s", code, strings.TrimSpace(body))
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || len(st) != len(pods) {
		return nil, fmt.Errorf("status answered %d statuses for %d pods (%v): %.300s", len(st), len(pods), err, body)
	}
	return st, nil
}

// notRunning returns a sentence for each pod whose status has a container not running.
func notRunning(pods []*v1.Pod, st []interlink.PodStatus) []string {
	var out []string
	for i, s := range st {
		for _, c := range s.Containers {
			if c.State.Running == nil {
				out = append(out, fmt.Sprintf("pod %s container %s: %s", pods[i].UID, c.Name, stateString(c.State)))
			}
		}
		if len(s.Containers) == 0 {
			out = append(out, fmt.Sprintf("pod %s: no container status", pods[i].UID))
		}
	}
	return out
}

// notFound tells whether a status says that no backend knows the pod.
func notFound(s interlink.PodStatus) bool {
	for _, c := range s.Containers {
		if c.State.Terminated != nil && c.State.Terminated.Reason == "NotFound" {
			return true
		}
	}
	return false
}

// refusedOrNotFound tells whether a status says that the pod is not on any backend: no backend knows it, or
// its create was refused (the refusal's sentence as the message).
func refusedOrNotFound(s interlink.PodStatus) bool {
	for _, c := range s.Containers {
		if c.State.Terminated != nil && c.State.Terminated.Reason == dispatcher.ReasonCreateRefused {
			return true
		}
	}
	return notFound(s)
}

func stateString(s v1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated %d %s %s", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message)
	case s.Waiting != nil:
		return fmt.Sprintf("waiting %s %s", s.Waiting.Reason, s.Waiting.Message)
	}
	return "no state"
}

// waitRunning polls /status until every container of every pod runs, failing after within with the pods
// that do not.
func (p *proc) waitRunning(pods []*v1.Pod, within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := p.statuses(pods)
		var bad []string
		if err == nil {
			bad = notRunning(pods, st)
			if len(bad) == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("pods not all running within %s: %v %s", within, err, firstN(bad, 10))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// metric returns the value of the sample of family name whose labels include every "k=v" of labels.
func (p *proc) metric(name string, labels ...string) (float64, bool) {
	code, body, err := p.do("GET", "/metrics", nil)
	if err != nil || code != 200 {
		return 0, false
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return 0, false
	}
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

// waitMetric polls /metrics until the sample reaches at least min, failing after within.
func (p *proc) waitMetric(within time.Duration, min float64, name string, labels ...string) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for {
		v, ok := p.metric(name, labels...)
		if ok && v >= min {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s{%s} is %v (found %v), not at least %v within %s", name, strings.Join(labels, ","), v, ok, min, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// backendPIDs returns the processes of this instance's backends, alive whoever their parent is: a process
// running one of the backend binaries with the instance in the environment the dispatcher gave it.
func (p *proc) backendPIDs() map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		for name, bin := range p.bins {
			if exe != bin {
				continue
			}
			env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if err == nil && bytes.Contains(env, []byte(strconv.Quote(p.instance))) && !zombie(pid) {
				out[pid] = name
			}
		}
	}
	return out
}

// zombie tells whether pid has exited and waits for its parent to reap it.
func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

// backendPID returns the one process of the named backend, failing the test if there is not exactly one.
func (p *proc) backendPID(name string) int {
	p.t.Helper()
	var pids []int
	for pid, n := range p.backendPIDs() {
		if n == name {
			pids = append(pids, pid)
		}
	}
	if len(pids) != 1 {
		p.t.Fatalf("backend %s of instance %s runs as %d processes %v, want 1", name, p.instance, len(pids), pids)
	}
	return pids[0]
}

// journal returns the journal's entries by UID. The dispatcher must be stopped: it holds the file locked.
func (p *proc) journal() map[string]dispatcher.Entry {
	p.t.Helper()
	j, err := dispatcher.OpenJournalTimeout(p.dataDir, 10*time.Second)
	if err != nil {
		p.t.Fatal(err)
	}
	defer j.Close()
	all, err := j.All()
	if err != nil {
		p.t.Fatal(err)
	}
	out := map[string]dispatcher.Entry{}
	for _, e := range all {
		out[e.UID] = e
	}
	return out
}

// settle polls the engines until the instance's objects on k are exactly one set for each pod of want and
// nothing else. After within it marks the test failed with what is wrong and returns false; the test goes on,
// so that it also reports what the journal and the deletes make of it.
func (p *proc) settle(k kind, want []*v1.Pod, within time.Duration) bool {
	p.t.Helper()
	began := time.Now()
	deadline := began.Add(within)
	for {
		inv, err := takeInventory(k, p.instance, p.dataDir)
		var bad []string
		if err == nil {
			bad = inv.problems(k, want)
			if len(bad) == 0 {
				p.t.Logf("%s: %d pods as they should be, nothing else, after %s", k.name, len(want), time.Since(began).Round(100*time.Millisecond))
				return true
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				p.t.Errorf("%s: cannot take the engine's inventory: %v", k.name, err)
				return false
			}
			p.t.Errorf("%s: the engine does not hold exactly one object set per pod and nothing else within %s (%d problems): %s",
				k.name, within, len(bad), firstN(bad, 15))
			return false
		}
		time.Sleep(time.Second)
	}
}

func firstN(s []string, n int) string {
	if len(s) > n {
		return strings.Join(s[:n], "; ") + fmt.Sprintf("; and %d more", len(s)-n)
	}
	return strings.Join(s, "; ")
}

// unitIDs returns, for each pod of the instance on k, the engine's ids of its object sets (the pause
// container, the Podman pod, the SLURM job): a pod the engine made again has new ones.
func (p *proc) unitIDs(k kind) map[string]string {
	p.t.Helper()
	inv, err := takeInventory(k, p.instance, p.dataDir)
	if err != nil {
		p.t.Fatalf("%s: cannot take the engine's inventory: %v", k.name, err)
	}
	out := map[string]string{}
	for uid, o := range inv.pods {
		ids := append([]string(nil), o.ids...)
		sort.Strings(ids)
		out[uid] = strings.Join(ids, ",")
	}
	return out
}

// sameUnits marks the test failed for each pod of pods whose object sets on k are not those of before.
func (p *proc) sameUnits(k kind, pods []*v1.Pod, before map[string]string, after string) {
	p.t.Helper()
	now := p.unitIDs(k)
	for _, pod := range pods {
		uid := string(pod.UID)
		if now[uid] != before[uid] {
			p.t.Errorf("%s: pod %s was made again %s: its object set was %q, now %q", k.name, uid, after, before[uid], now[uid])
		}
	}
}
