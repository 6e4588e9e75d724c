// Command benchdispatcher is the dispatcher process of the dispatcher-only benchmark
// (dispatcher/faults/bench_dispatcher_test.go, make bench): the dispatcher over a fake backend served in
// process, on the journal in the directory given as its argument, with nothing else in the binary, so
// that its RSS is the dispatcher's. It prints the address it listens on and ends when stdin closes. With
// BENCH_CPUPROFILE set, it writes a CPU profile there.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchdispatcher DATA_DIR")
		os.Exit(2)
	}
	if err := serve(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "benchdispatcher:", err)
		os.Exit(1)
	}
}

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

// serve runs the dispatcher on the journal in dataDir over a fake backend that has every journaled pod, so
// that the start's reconciliation finds nothing to adopt or miss.
func serve(dataDir string) error {
	j, err := dispatcher.OpenJournal(dataDir)
	if err != nil {
		return err
	}
	heads, err := j.Heads()
	if err != nil {
		return err
	}
	fake := &fakeBackend{pods: make(map[string]fakePod, len(heads)), started: time.Now()}
	for _, e := range heads {
		fake.pods[e.UID] = fakePod{e.Namespace, e.Name}
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
	// BENCH_CPUPROFILE names a file for a CPU profile of the process, from now until stdin closes.
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println(ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}
