//go:build bench

package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// fakeBackend is a backend with no engine, for measuring the dispatcher alone: it keeps the names of its
// pods and answers every one Running at once, from the containers of the pod it is asked about.
type fakeBackend struct {
	mu      sync.RWMutex
	pods    map[string]fakePod // by UID
	started time.Time
}

type fakePod struct{ namespace, name string }

func (f *fakeBackend) Describe(context.Context) (backend.Description, error) {
	return backend.Description{Name: "fake", Version: "bench", ProtocolVersion: backend.ProtocolVersion, Engine: "none"}, nil
}

func (f *fakeBackend) Capacity(context.Context) (backend.Capacity, error) {
	return backend.Capacity{}, nil
}

func (f *fakeBackend) Create(_ context.Context, req backend.CreateRequest) (backend.CreateResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods[string(req.Pod.UID)] = fakePod{req.Pod.Namespace, req.Pod.Name}
	return backend.CreateResult{RemoteID: "fake-" + string(req.Pod.UID)}, nil
}

func (f *fakeBackend) Delete(_ context.Context, req backend.DeleteRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pods, string(req.Pod.UID))
	return nil
}

func (f *fakeBackend) Status(_ context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]interlink.PodStatus, len(pods))
	for i, p := range pods {
		if _, ok := f.pods[string(p.UID)]; !ok {
			out[i] = pod.NotFoundStatus(p, "")
			continue
		}
		st := pod.NewPodStatus(p, "fake-"+string(p.UID))
		for j := range p.Spec.Containers {
			st.Containers = append(st.Containers, pod.Running(&p.Spec.Containers[j], f.started, 0))
		}
		out[i] = st
	}
	return out, nil
}

func (f *fakeBackend) Logs(context.Context, backend.LogRequest, io.Writer) error { return nil }

func (f *fakeBackend) List(context.Context) ([]backend.PodRecord, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]backend.PodRecord, 0, len(f.pods))
	for uid, p := range f.pods {
		out = append(out, backend.PodRecord{UID: uid, Namespace: p.namespace, Name: p.name, RemoteID: "fake-" + uid,
			Phase: v1.PodRunning, Created: f.started})
	}
	return out, nil
}

func (f *fakeBackend) Metrics(context.Context) ([]*dto.MetricFamily, error) { return nil, nil }

// inProcess is the fake served in process (backend.ServeInProcess: every call crosses the contract's gRPC
// wire form) as the supervisor's Instance.
type inProcess struct {
	*backend.Client
	desc backend.Description
	stop func()
	once sync.Once
	done chan struct{}
}

func (i *inProcess) Description() backend.Description { return i.desc }
func (i *inProcess) Done() <-chan struct{}            { return i.done }
func (i *inProcess) Stop()                            { i.once.Do(func() { i.stop(); close(i.done) }) }

func benchPod(i int) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{UID: types.UID(fmt.Sprintf("bench-%08d", i)), Name: "bench-" + strconv.Itoa(i), Namespace: "bench"},
		Spec: v1.PodSpec{RestartPolicy: v1.RestartPolicyNever,
			Containers: []v1.Container{{Name: "main", Image: "busybox:latest", Command: []string{"sleep", "3600"}}}},
	}
}

// The dispatcher-only benchmark runs the dispatcher in a process of its own (this test binary again, with
// benchDispatcherEnv set to its data directory), so that its RSS is the dispatcher's and its fake backend's,
// not the load generator's.
const (
	benchDispatcherEnv     = "INTERLINK_BENCH_DISPATCHER_DATA"
	benchDispatcherPodsEnv = "INTERLINK_BENCH_DISPATCHER_PODS"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(benchDispatcherEnv); dir != "" {
		if err := serveDispatcherAlone(dir, os.Getenv(benchDispatcherPodsEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "dispatcher alone:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveDispatcherAlone is the benchmark's dispatcher process: the journal in dataDir, the fake backend
// holding the first pods benchPods, an HTTP listener on loopback whose address it prints on stdout; it ends
// when stdin closes.
func serveDispatcherAlone(dataDir, pods string) error {
	n, err := strconv.Atoi(pods)
	if err != nil {
		return fmt.Errorf("%s: %w", benchDispatcherPodsEnv, err)
	}
	fake := &fakeBackend{pods: make(map[string]fakePod, n), started: time.Now()}
	for i := range n {
		p := benchPod(i)
		fake.pods[string(p.UID)] = fakePod{p.Namespace, p.Name}
	}
	j, err := dispatcher.OpenJournal(dataDir)
	if err != nil {
		return err
	}
	cfg := dispatcher.DefaultConfig()
	cfg.DataDir, cfg.Instance = dataDir, "bench"
	cfg.Backends = []dispatcher.BackendConfig{{Name: "fake", Binary: "/bin/true"}}
	cfg.Routing.Default = "fake"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	launch := func(ctx context.Context, spec dispatcher.LaunchSpec) (dispatcher.Instance, error) {
		c, stop, err := backend.ServeInProcess(spec.Name, fake)
		if err != nil {
			return nil, err
		}
		desc, err := c.Describe(ctx)
		if err != nil {
			stop()
			return nil, err
		}
		return &inProcess{Client: c, desc: desc, stop: stop, done: make(chan struct{})}, nil
	}
	sup, err := dispatcher.NewSupervisor(cfg, launch, log, nil)
	if err != nil {
		return err
	}
	srv, err := dispatcher.NewServer(dispatcher.Options{Config: cfg, Journal: j, Backends: sup, Logger: log})
	if err != nil {
		return err
	}
	sup.Start(context.Background())
	defer sup.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sup.WaitUp(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	fmt.Println(ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// BenchmarkDispatcherJournal measures the dispatcher alone over a fake in-process backend with
// BENCH_JOURNAL_PODS (10,000) journaled pods: the single-pod /status p50/p99 at concurrency 8 over
// BENCH_JOURNAL_CALLS (5,000) calls, and the RSS of the dispatcher's process. Run it with -benchtime 1x.
func BenchmarkDispatcherJournal(b *testing.B) {
	n, err := strconv.Atoi(envOr("BENCH_JOURNAL_PODS", "10000"))
	if err != nil || n <= 0 {
		b.Fatalf("BENCH_JOURNAL_PODS: %q is not a positive number", os.Getenv("BENCH_JOURNAL_PODS"))
	}
	calls, err := strconv.Atoi(envOr("BENCH_JOURNAL_CALLS", "5000"))
	if err != nil || calls <= 0 {
		b.Fatalf("BENCH_JOURNAL_CALLS: %q is not a positive number", os.Getenv("BENCH_JOURNAL_CALLS"))
	}

	// The pods are journaled as the dispatcher journals accepted creates, a thousand per transaction; the
	// fake has them too, so the start's reconciliation finds nothing to adopt or miss.
	dataDir := b.TempDir()
	j, err := dispatcher.OpenJournal(dataDir)
	if err != nil {
		b.Fatal(err)
	}
	pods := make([]*v1.Pod, n)
	var batch []dispatcher.Entry
	for i := range pods {
		pods[i] = benchPod(i)
		batch = append(batch, dispatcher.Entry{UID: string(pods[i].UID), Backend: "fake", RemoteID: "fake-" + string(pods[i].UID),
			Namespace: pods[i].Namespace, Name: pods[i].Name, Created: time.Now().UTC()})
		if len(batch) == 1000 || i == n-1 {
			if err := j.PutAll(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchDispatcherEnv+"="+dataDir, benchDispatcherPodsEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("the dispatcher process did not say where it listens: %v", err)
	}
	p := &proc{t: b, api: "http://" + strings.TrimSpace(addr), client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency}}}
	startRSS, _ := procMemory(cmd.Process.Pid)

	// A few hundred creates through /create, for the rate of the journaled path.
	creates := min(200, n)
	extra := make([]*v1.Pod, creates)
	for i := range extra {
		extra[i] = benchPod(n + i)
	}
	createRate := rate(creates, timed(func() { p.mustCreateAll(extra) }))

	// The first status of a pod is written to the journal (its last known status); the virtual kubelet's
	// later polls of an unchanged pod are not. Both passes ask the same pods, spread over the journal.
	cold := pollJournaled(b, p, pods, calls)
	warm := pollJournaled(b, p, pods, calls)
	rss, hwm := procMemory(cmd.Process.Pid)
	printJournalTable(os.Stdout, journalRow{pods: n, calls: calls, createRate: createRate,
		coldP50: percentile(cold, 0.5), coldP99: percentile(cold, 0.99), p50: percentile(warm, 0.5), p99: percentile(warm, 0.99),
		rss: rss, hwm: hwm, startRSS: startRSS})
}

// pollJournaled asks /status for one pod at a time, benchConcurrency at once, calls times over pods
// spread across the journal, and returns the latencies; a status that is not one Running status of the pod
// asked about fails the benchmark.
func pollJournaled(b *testing.B, p *proc, pods []*v1.Pod, calls int) []time.Duration {
	var mu sync.Mutex
	var lat []time.Duration
	var next, bad atomic.Int64
	var wg sync.WaitGroup
	n := int64(len(pods))
	for range benchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(calls) {
					return
				}
				pd := pods[(i*7919)%n] // spread over the journal, not one hot key
				t0 := time.Now()
				code, body, err := p.do("GET", "/status", []*v1.Pod{pd})
				took := time.Since(t0)
				var st []interlink.PodStatus
				if err != nil || code != 200 || json.Unmarshal([]byte(body), &st) != nil || len(st) != 1 ||
					st[0].PodUID != string(pd.UID) || len(st[0].Containers) != 1 || st[0].Containers[0].State.Running == nil {
					bad.Add(1)
				}
				mu.Lock()
				lat = append(lat, took)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if bad.Load() > 0 {
		b.Errorf("%d of %d single-pod statuses were not one Running status of the pod asked about", bad.Load(), calls)
	}
	return lat
}
