//go:build bench

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// The benchmarks of `make bench` (build tag bench): the real dispatcher binary over each real backend binary
// on the lab's engines, beside the raw engine doing the same work in the same run, at each N of BENCH_N.
// They print one table per backend with the ratios and the targets (bench_table_test.go) marked met or not met.
//
//	BENCH_N="100 400"                 pods per run (SLURM: held jobs)
//	BENCH_BACKENDS="docker podman slurm"   (kubernetes too: bench_kube_test.go)
//	BENCH_POLL=30s                    how long the virtual-kubelet-like poll loop runs at each N
//
// Each figure is measured once per run: they are benchmarks to read, not timed tests.

const (
	benchConcurrency = 8               // the virtual kubelet's concurrency
	benchPollPeriod  = 5 * time.Second // the virtual kubelet asks every pod about every 5 s
	// benchSettle is how long each create waits after the deletes before it: the kernel tears down the
	// network namespaces of removed containers after they are gone, under the lock that making a new one
	// needs, and a create started at once pays for the deletes before it (measured on the lab's Docker with
	// backends/docker's BenchmarkCreateDelete: backend creates right after a raw delete of 20 pods came out
	// at 0.68-0.80x raw, 1.07x after a 10 s pause).
	benchSettle = 10 * time.Second
)

// labRow is what one N gave on one backend.
type labRow struct {
	n                         int
	create, rawCreate         float64 // pods (containers, jobs) per second
	del, rawDelete            float64
	p50, p99                  time.Duration // single-pod /status under the poll loop
	statuses, statusErrors    int
	poll                      time.Duration
	batch, rawList            time.Duration // one /status of all N; one bare engine list
	calls                     float64       // engine calls during the poll loop
	callsKnown                bool
	dispRSS, dispHWM, backRSS int64 // kB
	backHWM                   int64
	createWhere, deleteWhere  string // where a create's and a delete's time went
	createCPU, deleteCPU      string // what the machine's CPUs did meanwhile, raw and through the dispatcher
	statusWhere               string // how the poll loop's statuses were answered: its engine calls by operation
}

func benchNs(tb testing.TB) []int {
	var ns []int
	for _, f := range strings.Fields(envOr("BENCH_N", "100 400")) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			tb.Fatalf("BENCH_N: %q is not a positive number of pods", f)
		}
		ns = append(ns, n)
	}
	return ns
}

func envOr(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}

// BenchmarkLab runs every backend of BENCH_BACKENDS at every N of BENCH_N. Run it with -benchtime 1x.
func BenchmarkLab(b *testing.B) {
	ns := benchNs(b)
	poll, err := time.ParseDuration(envOr("BENCH_POLL", "30s"))
	if err != nil {
		b.Fatalf("BENCH_POLL: %v", err)
	}
	for _, name := range strings.Fields(envOr("BENCH_BACKENDS", "docker podman slurm")) {
		k, ok := benchKind(name)
		if !ok {
			b.Fatalf("BENCH_BACKENDS: no backend %q", name)
		}
		b.Run(k.name, func(b *testing.B) {
			k := withRemoteNamespace(b, withPodLimit(k, slices.Max(ns)))
			p := start(b, "bench-"+k.name, k)
			var rows []labRow
			for _, n := range ns {
				rows = append(rows, benchOne(b, p, k, n, poll))
			}
			printLabTable(os.Stdout, k.name, rows)
		})
	}
}

// withPodLimit is k with room for n pods: the container engines' backends accept 110 pods by default (the
// kubelet's max-pods), and a benchmark at N = 400 would meet that limit.
func withPodLimit(k kind, n int) kind {
	if k.name != "docker" && k.name != "podman" {
		return k
	}
	cfg := maps.Clone(k.config)
	cfg["pods"] = n + 10
	k.config = cfg
	return k
}

func benchKind(name string) (kind, bool) {
	for _, k := range append(slices.Clone(allKinds), kubeKind) {
		if k.name == name {
			return k, true
		}
	}
	return kind{}, false
}

// benchOne measures one N: raw create and delete, then the backend's create, the poll loop, one-call
// status against a bare list, the processes' memory, and the backend's delete.
func benchOne(b *testing.B, p *proc, k kind, n int, poll time.Duration) labRow {
	row := labRow{n: n}
	raw := newRawEngine(b, k, fmt.Sprintf("%s-raw%d", p.instance, n))
	if k.name == kubeKind.name {
		raw.kube = newKubeRaw(b, k)
	}
	time.Sleep(benchSettle)
	dispPID, backPID := p.dispatcherPID(), p.backendPID(k.name)
	c0 := sampleCPU()
	row.rawCreate = rate(n, timed(func() { parallelN(b, n, raw.create) }))
	c1 := sampleCPU()
	row.rawDelete = rate(n, timed(func() { parallelN(b, n, raw.remove) }))
	c2 := sampleCPU()
	rawCreateCPU, rawDeleteCPU := c1.since(c0), c2.since(c1)
	time.Sleep(benchSettle)

	pods := make([]*v1.Pod, n)
	for i := range pods {
		pods[i] = p.pod(k, fmt.Sprintf("n%d-%d", n, i))
		// As the raw engine's create, which does not ask the registry: busybox:latest would otherwise be
		// pulled by every create (pull policy Always), which measures the registry, not the backend.
		pods[i].Spec.Containers[0].ImagePullPolicy = v1.PullIfNotPresent
		if k.name == slurmKind.name {
			pods[i].Annotations["slurm-job.vk.io/flags"] = "--hold" // pending for good: no CPU of the lab's
		}
	}
	// A create is done when the pod runs (a backend may answer before it starts the containers, as the
	// raw engine's create and start are done when the container runs); SLURM's held job when sbatch took it.
	m0 := scrape(p)
	c0 = sampleCPU()
	row.create = rate(n, timed(func() {
		p.mustCreateAll(pods)
		if k.name != slurmKind.name {
			p.waitRunning(pods, 10*time.Minute)
		}
	}))
	row.createCPU = cpuUse(n, rawCreateCPU, sampleCPU().since(c0), dispPID, backPID)
	row.createWhere = breakdown(m0, scrape(p), k.name, "create", n)

	m0 = scrape(p)
	before, known := engineCalls(m0, k.name)
	start := time.Now()
	lat, errs := pollLoop(p, pods, poll)
	row.poll = time.Since(start)
	m1 := scrape(p)
	after, known2 := engineCalls(m1, k.name)
	row.calls, row.callsKnown = after-before, known && known2
	row.statuses, row.statusErrors = len(lat), errs
	if k.name == kubeKind.name {
		row.statusWhere = kubeStatusSources(m0, m1, k.name)
	} else if calls := callsPerPod(m0, m1, k.name, row.statuses); calls != "" {
		row.statusWhere = "engine calls per status: " + calls
	}
	row.p50, row.p99 = percentile(lat, 0.50), percentile(lat, 0.99)

	var batch, list []time.Duration
	for range 5 {
		batch = append(batch, timed(func() {
			if _, err := p.statuses(pods); err != nil {
				b.Errorf("one-call status of %d pods: %v", n, err)
			}
		}))
		list = append(list, timed(func() { raw.list(b, p.instance) }))
	}
	row.batch, row.rawList = percentile(batch, 0.5), percentile(list, 0.5)

	row.dispRSS, row.dispHWM = procMemory(p.dispatcherPID())
	row.backRSS, row.backHWM = procMemory(p.backendPID(k.name))
	m0 = scrape(p)
	c0 = sampleCPU()
	row.del = rate(n, timed(func() { p.mustDeleteAll(pods) }))
	row.deleteCPU = cpuUse(n, rawDeleteCPU, sampleCPU().since(c0), dispPID, backPID)
	row.deleteWhere = breakdown(m0, scrape(p), k.name, "delete", n)
	return row
}

func (p *proc) dispatcherPID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// parallelN calls f(i) for i in [0, n), benchConcurrency at once, and fails the benchmark on any error.
func parallelN(tb testing.TB, n int, f func(i int) error) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, benchConcurrency)
	var failed atomic.Int64
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				if failed.Add(1) <= 5 {
					tb.Errorf("raw engine: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		tb.FailNow()
	}
}

// pollLoop asks /status for one pod at a time like the virtual kubelet: every pod once every 5 s, spread
// evenly over the period, at most benchConcurrency at once, for d. It returns each call's latency and how
// many calls failed (non-200, or not one status for the pod).
func pollLoop(p *proc, pods []*v1.Pod, d time.Duration) ([]time.Duration, int) {
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	sem := make(chan struct{}, benchConcurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for tick := 0; ; tick++ {
		at := start.Add(time.Duration(tick) * benchPollPeriod / time.Duration(len(pods)))
		if at.Sub(start) >= d {
			break
		}
		time.Sleep(time.Until(at))
		pd := pods[tick%len(pods)]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			code, body, err := p.do("GET", "/status", []*v1.Pod{pd})
			took := time.Since(t0)
			var st []interlink.PodStatus
			ok := err == nil && code == 200 && json.Unmarshal([]byte(body), &st) == nil && len(st) == 1 &&
				st[0].PodUID == string(pd.UID)
			mu.Lock()
			lat = append(lat, took)
			if !ok {
				errs++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, errs
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// scrape reads the dispatcher's /metrics (its own series and every backend's, labelled backend=<name>).
func scrape(p *proc) map[string]*dto.MetricFamily {
	code, body, err := p.do("GET", "/metrics", nil)
	if err != nil || code != 200 {
		return nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return nil
	}
	return fams
}

// total sums the samples of a family whose labels include every "k=v" given (histograms: their sample
// count and sum), and says whether any sample matched.
func total(fams map[string]*dto.MetricFamily, family string, labels ...string) (count, sum float64, found bool) {
	f := fams[family]
	if f == nil {
		return 0, 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if !strings.EqualFold(have[k], v) {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			count += m.Counter.GetValue()
		case m.Histogram != nil:
			count += float64(m.Histogram.GetSampleCount())
			sum += m.Histogram.GetSampleSum()
		}
	}
	return count, sum, found
}

// engineCalls is the number of engine calls the backend has made: interlink_backend_engine_calls_total when
// the backend has it, else the count of its engine_request_duration_seconds histogram (Docker, Podman), else
// SLURM's command counters. false: the backend exports no engine-call counter.
func engineCalls(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
	if v, _, ok := total(fams, "interlink_backend_engine_calls_total", "backend="+name); ok {
		return v, true
	}
	// Kubernetes: every HTTP request to the remote API server (a watch counts once, when it starts).
	if v, _, ok := total(fams, "interlink_backend_"+name+"_api_requests_total", "backend="+name); ok {
		return v, true
	}
	if v, _, ok := total(fams, "interlink_backend_"+name+"_engine_request_duration_seconds", "backend="+name); ok {
		return v, true
	}
	var sum float64
	found := false
	for _, c := range []string{"squeue", "sbatch", "scancel", "sinfo"} {
		if v, _, ok := total(fams, "interlink_backend_slurm_"+c+"_invocations_total", "backend="+name); ok {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// breakdown says where the time of a create or a delete (op) of pods pods went, as means over the calls
// between two scrapes: the whole HTTP call, the backend's call, the journal write, the engine calls per pod
// by operation (Docker, Podman), and (SLURM) sbatch.
func breakdown(before, after map[string]*dto.MetricFamily, backendName, op string, pods int) string {
	mean := func(family string, labels ...string) string {
		c0, s0, _ := total(before, family, labels...)
		c1, s1, ok := total(after, family, labels...)
		if !ok || c1 == c0 {
			return "n/a"
		}
		return ms(time.Duration((s1 - s0) / (c1 - c0) * float64(time.Second)))
	}
	out := fmt.Sprintf("/%s %s = backend %s %s + journal write %s + the rest", op,
		mean("interlink_dispatcher_http_request_duration_seconds", "route=/"+op), op,
		mean("interlink_dispatcher_backend_rpc_duration_seconds", "backend="+backendName, "method="+op),
		mean("interlink_dispatcher_journal_write_duration_seconds"))
	if calls := callsPerPod(before, after, backendName, pods); calls != "" {
		out += "; engine calls per pod: " + calls
	}
	if backendName == slurmKind.name && op == "create" {
		out += "; in the backend " + mean("interlink_backend_slurm_create_duration_seconds", "backend="+backendName) +
			" of which sbatch " + mean("interlink_backend_slurm_sbatch_duration_seconds", "backend="+backendName)
	}
	return out
}

// cpuSample is CPU time so far, in seconds: the whole machine's busy and total (all CPUs, from /proc/stat),
// and every process's by PID.
type cpuSample struct {
	busy, total float64
	uptime      float64 // seconds since boot
	procs       map[int]procTimes
}

// procTimes is a process's CPU: its own (user and system), and with that of the children it has reaped (so
// sbatch and runc count under what ran them).
type procTimes struct {
	command  string
	started  float64 // seconds since boot
	own, cpu float64
}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 0.01

func sampleCPU() cpuSample {
	s := cpuSample{procs: map[int]procTimes{}}
	if data, err := os.ReadFile("/proc/uptime"); err == nil {
		f := strings.Fields(string(data))
		if len(f) > 0 {
			s.uptime, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(data), "\n")
		for i, f := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			if i >= 8 { // guest times are counted in user already
				break
			}
			s.total += v * clockTick
			if i != 3 && i != 4 { // idle, iowait
				s.busy += v * clockTick
			}
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if t, ok := procCPU(pid); ok {
			s.procs[pid] = t
		}
	}
	return s
}

// procCPU reads a process's command name (a kernel worker's without what it works on), when it started,
// and its CPU.
func procCPU(pid int) (t procTimes, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return t, false
	}
	// "pid (command) state ...": the command may hold spaces and parentheses.
	open, end := strings.IndexByte(string(data), '('), strings.LastIndex(string(data), ") ")
	if open < 0 || end < open {
		return t, false
	}
	f := strings.Fields(string(data[end+2:]))
	if len(f) < 20 {
		return t, false
	}
	field := func(i int) float64 { v, _ := strconv.ParseFloat(f[i-3], 64); return v * clockTick } // i as in proc(5)
	t.command = string(data[open+1 : end])
	if strings.HasPrefix(t.command, "kworker/") {
		t.command = "kworker"
	}
	t.started = field(22)
	t.own = field(14) + field(15)
	t.cpu = t.own + field(16) + field(17)
	return t, true
}

// since is what happened between before and s. A process seen in both counts what it spent between; one
// that started after before, all it spent.
func (s cpuSample) since(before cpuSample) cpuSample {
	d := cpuSample{busy: s.busy - before.busy, total: s.total - before.total, procs: map[int]procTimes{}}
	for pid, t := range s.procs {
		if b, ok := before.procs[pid]; ok && b.started == t.started {
			t.own, t.cpu = t.own-b.own, t.cpu-b.cpu
		} else if t.started < before.uptime {
			continue // older than before, yet not seen then
		}
		if t.cpu > 0 {
			d.procs[pid] = t
		}
	}
	return d
}

// byCommand sums the CPU of s's processes by command name.
func (s cpuSample) byCommand() map[string]float64 {
	out := map[string]float64{}
	for _, t := range s.procs {
		out[t.command] += t.cpu
	}
	return out
}

// cpuUse says how busy the machine's CPUs were during the raw engine's n operations and the backend's, the
// CPU per pod of each and of the dispatcher's and the backend's processes (their own), and the commands that spent the most per pod through the dispatcher, beside what they
// spent raw. When the raw side alone keeps the CPUs busy, the extra per pod is what the rate loses. A
// container's process counts under the command it runs (runc's set-up included), so the raw side's
// containers (sh, sleep) and the backend's (pause, the shim) show under different names.
func cpuUse(n int, raw, through cpuSample, dispPID, backPID int) string {
	busy := func(s cpuSample) float64 { return 100 * s.busy / max(s.total, 1e-9) }
	perPod := func(v float64) string { return ms(time.Duration(v / float64(n) * float64(time.Second))) }
	out := fmt.Sprintf("CPUs %.0f%% busy raw, %.0f%% through the dispatcher; per pod the machine %s raw, %s through it, of which dispatcher %s, backend %s",
		busy(raw), busy(through), perPod(raw.busy), perPod(through.busy), perPod(through.procs[dispPID].own), perPod(through.procs[backPID].own))
	top := func(s cpuSample) []string {
		cpu := s.byCommand()
		commands := make([]string, 0, len(cpu))
		for c := range cpu {
			commands = append(commands, c)
		}
		sort.Slice(commands, func(i, j int) bool { return cpu[commands[i]] > cpu[commands[j]] })
		words := make([]string, 0, 5)
		for _, c := range commands[:min(5, len(commands))] {
			words = append(words, c+" "+perPod(cpu[c]))
		}
		return words
	}
	return out + "; most per pod raw: " + strings.Join(top(raw), ", ") + "; through it: " + strings.Join(top(through), ", ")
}

// callsPerPod is the engine calls a backend made between two scrapes by operation
// (interlink_backend_engine_calls_total{op}), per pod of pods (or per status), most first; "" if it counts
// none that way.
func callsPerPod(before, after map[string]*dto.MetricFamily, backendName string, pods int) string {
	f := after["interlink_backend_engine_calls_total"]
	if f == nil || pods == 0 {
		return ""
	}
	type opCalls struct {
		op string
		n  float64
	}
	var ops []opCalls
	for _, m := range f.Metric {
		var op, name string
		for _, l := range m.Label {
			switch l.GetName() {
			case "op":
				op = l.GetValue()
			case "backend":
				name = l.GetValue()
			}
		}
		if name != backendName || op == "" {
			continue
		}
		c0, _, _ := total(before, f.GetName(), "backend="+name, "op="+op)
		if n := m.Counter.GetValue() - c0; n > 0 {
			ops = append(ops, opCalls{op, n / float64(pods)})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].n > ops[j].n || ops[i].n == ops[j].n && ops[i].op < ops[j].op })
	words := make([]string, len(ops))
	for i, o := range ops {
		words[i] = fmt.Sprintf("%s %.2f", o.op, o.n)
	}
	return strings.Join(words, ", ")
}

// procMemory returns the resident set size and its peak of a process, in kB (0 when unreadable).
func procMemory(pid int) (rss, hwm int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm
}

// rawEngine does with the engine itself what the backend does for a pod: one container (one held job) per
// pod, made, listed and removed at the same concurrency; on Docker the pod's two containers, a sandbox
// holding the network and IPC namespaces and the container joining them, as the backend's pause and
// container (one container alone would set a pod's two engine creates and starts against one). Its objects
// carry the instance label (SLURM: the job name starts with the instance), so the harness's sweep removes
// what a failed run leaves.
type rawEngine struct {
	k        kind
	instance string
	kube     *kubeRaw // the kubernetes kind's: the remote API server
	mu       sync.Mutex
	ids      map[int]string
	sandbox  map[int]string // Docker: the sandbox container of pod i
}

func newRawEngine(tb testing.TB, k kind, instance string) *rawEngine {
	r := &rawEngine{k: k, instance: instance, ids: map[int]string{}, sandbox: map[int]string{}}
	tb.Cleanup(func() {
		if n, err := sweep(k, instance); err != nil || n > 0 {
			tb.Logf("raw %s clean-up: %d objects removed, %v", k.name, n, err)
		}
	})
	return r
}

func (r *rawEngine) set(i int, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids[i] = id
}

func (r *rawEngine) id(i int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[i]
}

// create starts container i as the backend starts a pod's: busybox running sleep (SLURM: a held job).
func (r *rawEngine) create(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	labels := map[string]string{pod.LabelInstance: r.instance}
	cmd := []string{"sh", "-c", "sleep 3600"}
	switch r.k.name {
	case kubeKind.name:
		return r.kube.create(r.instance, i)
	case dockerKind.name:
		cli, err := dockerClient()
		if err != nil {
			return err
		}
		defer cli.Close()
		s, err := cli.ContainerCreate(ctx, &container.Config{Image: labtest.BusyboxImage, Cmd: cmd, Labels: labels},
			&container.HostConfig{IpcMode: "shareable"}, nil, nil, "")
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.sandbox[i] = s.ID
		r.mu.Unlock()
		if err := cli.ContainerStart(ctx, s.ID, container.StartOptions{}); err != nil {
			return err
		}
		// Under an init (docker-init), as the backend's container is under its shim: the command is not PID 1,
		// so the delete's SIGTERM ends it as it ends the backend's, rather than the stop's timeout.
		withInit := true
		c, err := cli.ContainerCreate(ctx, &container.Config{Image: labtest.BusyboxImage, Cmd: cmd, Labels: labels},
			&container.HostConfig{NetworkMode: container.NetworkMode("container:" + s.ID), IpcMode: container.IpcMode("container:" + s.ID),
				Init: &withInit}, nil, nil, "")
		if err != nil {
			return err
		}
		r.set(i, c.ID)
		return cli.ContainerStart(ctx, c.ID, container.StartOptions{})
	case podmanKind.name:
		var c struct {
			ID string `json:"Id"`
		}
		spec := map[string]any{"image": "docker.io/library/" + labtest.BusyboxImage, "command": cmd, "labels": labels}
		if err := libpodJSON(ctx, "POST", "/containers/create", spec, &c); err != nil {
			return err
		}
		r.set(i, c.ID)
		return libpod(ctx, "POST", "/containers/"+c.ID+"/start", nil)
	default:
		out, err := exec.CommandContext(ctx, "sbatch", "--parsable", "--hold", "--mem=64M", "--output=/dev/null",
			"--job-name="+r.instance+"-"+strconv.Itoa(i), "--wrap", "sleep 3600").Output()
		if err != nil {
			return fmt.Errorf("sbatch: %w", err)
		}
		id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
		r.set(i, id)
		return nil
	}
}

// remove stops container i with a grace period of one second and removes it, as the backends do for the
// delete the harness sends (SLURM: scancel of the held job).
func (r *rawEngine) remove(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id := r.id(i)
	switch r.k.name {
	case kubeKind.name:
		return r.kube.remove(r.instance, i)
	case dockerKind.name:
		cli, err := dockerClient()
		if err != nil {
			return err
		}
		defer cli.Close()
		one := 1
		if err := cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &one}); err != nil {
			return err
		}
		if err := cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
			return err
		}
		r.mu.Lock()
		sandbox := r.sandbox[i]
		r.mu.Unlock()
		return cli.ContainerRemove(ctx, sandbox, container.RemoveOptions{Force: true})
	case podmanKind.name:
		if err := libpod(ctx, "POST", "/containers/"+id+"/stop?timeout=1", nil); err != nil {
			return err
		}
		return libpod(ctx, "DELETE", "/containers/"+id+"?force=true", nil)
	default:
		if out, err := exec.CommandContext(ctx, "scancel", id).CombinedOutput(); err != nil {
			return fmt.Errorf("scancel %s: %v: %s", id, err, out)
		}
		return nil
	}
}

// list is one bare engine list of the dispatcher instance's objects: what a backend would have to ask for
// to answer about all its pods (SLURM: squeue --json, which lists the whole queue in 22.05).
func (r *rawEngine) list(tb testing.TB, instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	switch r.k.name {
	case kubeKind.name:
		err = r.kube.list(instance)
	case dockerKind.name:
		cli, cerr := dockerClient()
		if err = cerr; err == nil {
			_, err = cli.ContainerList(ctx, container.ListOptions{All: true, Filters: instanceFilter(instance)})
			cli.Close()
		}
	case podmanKind.name:
		var out []podmanObject
		err = libpod(ctx, "GET", "/containers/json?all=true&"+podmanLabelQuery(instance), &out)
	default:
		err = exec.CommandContext(ctx, "squeue", "--json").Run()
	}
	if err != nil {
		tb.Errorf("raw %s list: %v", r.k.name, err)
	}
}

// libpodJSON is libpod with a JSON request body.
func libpodJSON(ctx context.Context, method, path string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", labtest.PodmanSocket)
	}}}
	req, err := http.NewRequestWithContext(ctx, method, "http://d/v4.0.0/libpod"+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("podman %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("podman %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	return json.Unmarshal(data, out)
}
