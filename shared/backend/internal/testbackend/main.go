// Command testbackend is a real go-plugin backend binary that keeps its pods in memory. The tests of
// shared/backend build it and run it through Launch to exercise the whole plumbing (handshake, gRPC,
// errors, log streaming, stderr logs, process supervision); it runs nothing.
//
// Its config (Env.Config) may hold:
//
//	{"failStart": "a sentence"}  the factory fails with that sentence
//	{"describeProtocol": 7}      Describe claims that protocol version
//	{"logLines": 3}              how many lines a container's log has before any follow ticks
//	{"persist": true}            pods are kept in Env.DataDir/pods.json, so that a restarted process has them
//
// and -serve-protocol N serves the plugin under handshake protocol version N instead of this build's.
// A pod annotated test.interlink.eu/error: invalid|not_found|unavailable|internal makes Create and Delete
// fail with that kind. A pod annotated test.interlink.eu/exit-after-create: once (with persist) makes the
// process exit right after it recorded the pod, without answering, the first time that pod is created: a
// backend dying between accepting a pod and answering.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/records"
)

// ErrorAnnotation makes Create and Delete fail with the kind it names.
const ErrorAnnotation = "test.interlink.eu/error"

// ExitAnnotation makes the process exit once after recording the pod, before answering its Create.
const ExitAnnotation = "test.interlink.eu/exit-after-create"

type config struct {
	FailStart        string `json:"failStart"`
	DescribeProtocol int    `json:"describeProtocol"`
	LogLines         int    `json:"logLines"`
	Persist          bool   `json:"persist"`
}

type pod struct {
	pod      *v1.Pod
	remoteID string
	created  time.Time
}

// storedPod is a pod as persist keeps it.
type storedPod struct {
	Pod      *v1.Pod   `json:"pod"`
	RemoteID string    `json:"remoteID"`
	Created  time.Time `json:"created"`
}

func (m *memory) storePath() string { return filepath.Join(m.env.DataDir, "pods.json") }

// save writes every pod to the data directory when persist is set; the caller holds m.mu.
func (m *memory) save() error {
	if !m.cfg.Persist {
		return nil
	}
	out := map[string]storedPod{}
	for uid, rec := range m.pods {
		out[uid] = storedPod{Pod: rec.pod, RemoteID: rec.remoteID, Created: rec.created}
	}
	data, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return records.WriteFile(m.storePath(), data, 0o600)
}

func (m *memory) load() error {
	data, err := os.ReadFile(m.storePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var in map[string]storedPod
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	for uid, sp := range in {
		m.pods[uid] = &pod{pod: sp.Pod, remoteID: sp.RemoteID, created: sp.Created}
		var n int
		if _, err := fmt.Sscanf(sp.RemoteID, "mem-%d", &n); err == nil && n > m.nextID {
			m.nextID = n
		}
	}
	return nil
}

type memory struct {
	cfg config
	env backend.Env

	mu     sync.Mutex
	pods   map[string]*pod
	nextID int

	reg       *prometheus.Registry
	calls     *prometheus.CounterVec
	followers prometheus.Gauge
}

func newMemory(_ context.Context, env backend.Env) (backend.Backend, error) {
	cfg := config{LogLines: 3}
	if err := json.Unmarshal(env.Config, &cfg); err != nil {
		return nil, fmt.Errorf("its config is not valid: %v", err)
	}
	if cfg.FailStart != "" {
		return nil, errors.New(cfg.FailStart)
	}
	m := &memory{cfg: cfg, env: env, pods: map[string]*pod{}, reg: prometheus.NewRegistry()}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "testbackend_calls_total", Help: "Calls by method.",
	}, []string{"method"})
	m.followers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "testbackend_log_followers", Help: "Log streams following right now.",
	})
	m.reg.MustRegister(m.calls, m.followers)
	if cfg.Persist {
		if env.DataDir == "" {
			return nil, errors.New("persist needs a data directory")
		}
		if err := m.load(); err != nil {
			return nil, fmt.Errorf("cannot load the pods of %s: %v", m.storePath(), err)
		}
	}
	slog.Info("memory backend ready", "name", env.Name, "instance", env.Instance)
	return m, nil
}

func (m *memory) Describe(context.Context) (backend.Description, error) {
	m.calls.WithLabelValues("Describe").Inc()
	pv := backend.ProtocolVersion
	if m.cfg.DescribeProtocol != 0 {
		pv = m.cfg.DescribeProtocol
	}
	return backend.Description{
		Name: "memory", Version: "0.0.1-test", ProtocolVersion: pv, Engine: "memory",
		Capabilities: backend.Capabilities{
			VolumeKinds:       []string{"configMap", "emptyDir"},
			Features:          []string{backend.FeatureInitContainers, backend.FeatureMultipleContainers},
			ExtendedResources: []string{"nvidia.com/gpu"},
		},
	}, nil
}

func ptr(v int64) *int64 { return &v }

func (m *memory) Capacity(context.Context) (backend.Capacity, error) {
	m.calls.WithLabelValues("Capacity").Inc()
	added := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return backend.Capacity{
		CPUMilli: ptr(4000), MemoryBytes: ptr(8 << 30), Pods: nil,
		Accelerators: map[string]int64{"nvidia.com/gpu": 2},
		Taints: []v1.Taint{{Key: "example.com/maintenance", Value: "true", Effect: v1.TaintEffectNoSchedule,
			TimeAdded: &added}},
	}, nil
}

func askedError(p *v1.Pod) error {
	switch kind := p.Annotations[ErrorAnnotation]; kind {
	case "":
		return nil
	case "invalid":
		return backend.Invalid("spec.containers[0].image: asked to fail as invalid")
	case "not_found":
		return backend.NotFound("pod %s: asked to fail as not found", p.UID)
	case "unavailable":
		return backend.Unavailable("the memory engine is asked to be unavailable")
	default:
		return fmt.Errorf("asked to fail with an internal error (%s)", kind)
	}
}

func (m *memory) Create(_ context.Context, req backend.CreateRequest) (backend.CreateResult, error) {
	m.calls.WithLabelValues("Create").Inc()
	p := req.Pod
	if p.UID == "" {
		return backend.CreateResult{}, backend.Invalid("metadata.uid: the pod has no UID")
	}
	if err := askedError(p); err != nil {
		return backend.CreateResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if existing, ok := m.pods[string(p.UID)]; ok {
		return backend.CreateResult{RemoteID: existing.remoteID}, nil
	}
	m.nextID++
	rec := &pod{pod: p, remoteID: fmt.Sprintf("mem-%d", m.nextID), created: time.Now()}
	m.pods[string(p.UID)] = rec
	if err := m.save(); err != nil {
		delete(m.pods, string(p.UID))
		return backend.CreateResult{}, fmt.Errorf("cannot record the pod: %v", err)
	}
	if p.Annotations[ExitAnnotation] == "once" && m.cfg.Persist {
		marker := filepath.Join(m.env.DataDir, "exited-"+string(p.UID))
		if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
			if err := os.WriteFile(marker, nil, 0o600); err == nil {
				slog.Warn("exiting after recording the pod, as asked", "uid", string(p.UID))
				os.Exit(3)
			}
		}
	}
	cmBytes := 0
	for _, c := range req.Containers {
		for _, cm := range c.ConfigMaps {
			for _, v := range cm.Data {
				cmBytes += len(v)
			}
		}
	}
	slog.Info("pod created", "uid", string(p.UID), "namespace", p.Namespace, "containers", len(req.Containers),
		"configMapBytes", cmBytes, "note", p.Annotations["note"], "jobScript", req.JobScript)
	return backend.CreateResult{RemoteID: rec.remoteID}, nil
}

func (m *memory) Delete(_ context.Context, req backend.DeleteRequest) error {
	m.calls.WithLabelValues("Delete").Inc()
	if err := askedError(req.Pod); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.pods[string(req.Pod.UID)]; !ok {
		slog.Warn("unknown pod deleted", "uid", string(req.Pod.UID))
		return nil
	}
	delete(m.pods, string(req.Pod.UID))
	return m.save()
}

func containerStatuses(cs []v1.Container, state func(v1.Container) v1.ContainerState) []v1.ContainerStatus {
	out := make([]v1.ContainerStatus, 0, len(cs))
	for _, c := range cs {
		st := state(c)
		out = append(out, v1.ContainerStatus{Name: c.Name, Image: c.Image, State: st, Ready: st.Running != nil})
	}
	return out
}

func (m *memory) Status(_ context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	m.calls.WithLabelValues("Status").Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]interlink.PodStatus, 0, len(pods))
	for _, p := range pods {
		ps := interlink.PodStatus{PodName: p.Name, PodUID: string(p.UID), PodNamespace: p.Namespace}
		rec, ok := m.pods[string(p.UID)]
		if !ok {
			notFound := func(v1.Container) v1.ContainerState {
				return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1, Reason: "NotFound",
					Message: "the memory backend does not know this pod"}}
			}
			ps.Containers = containerStatuses(p.Spec.Containers, notFound)
			ps.InitContainers = containerStatuses(p.Spec.InitContainers, notFound)
		} else {
			ps.JobID = rec.remoteID
			started := metav1.NewTime(rec.created.Truncate(time.Second))
			ps.Containers = containerStatuses(p.Spec.Containers, func(v1.Container) v1.ContainerState {
				return v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: started}}
			})
			ps.InitContainers = containerStatuses(p.Spec.InitContainers, func(v1.Container) v1.ContainerState {
				return v1.ContainerState{Terminated: &v1.ContainerStateTerminated{Reason: "Completed",
					StartedAt: started, FinishedAt: started}}
			})
		}
		out = append(out, ps)
	}
	return out, nil
}

func (m *memory) Logs(ctx context.Context, req backend.LogRequest, w io.Writer) error {
	m.calls.WithLabelValues("Logs").Inc()
	m.mu.Lock()
	rec, ok := m.pods[req.PodUID]
	m.mu.Unlock()
	if !ok {
		return backend.NotFound("pod %s is not known to the memory backend", req.PodUID)
	}
	found := false
	for _, c := range append(append([]v1.Container{}, rec.pod.Spec.InitContainers...), rec.pod.Spec.Containers...) {
		found = found || c.Name == req.ContainerName
	}
	if !found {
		return backend.NotFound("pod %s has no container %q", req.PodUID, req.ContainerName)
	}
	line := func(s string) string {
		if req.Opts.Timestamps {
			return time.Now().UTC().Format(time.RFC3339Nano) + " " + s + "\n"
		}
		return s + "\n"
	}
	var lines []string
	for i := 1; i <= m.cfg.LogLines; i++ {
		lines = append(lines, line(fmt.Sprintf("%s line %d", req.ContainerName, i)))
	}
	if t := req.Opts.Tail; t > 0 && t < len(lines) {
		lines = lines[len(lines)-t:]
	}
	if _, err := io.WriteString(w, strings.Join(lines, "")); err != nil {
		return err
	}
	if !req.Opts.Follow {
		return nil
	}
	m.followers.Inc()
	defer m.followers.Dec()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			slog.Debug("log follower left", "uid", req.PodUID)
			return ctx.Err()
		case <-tick.C:
			if _, err := io.WriteString(w, line(fmt.Sprintf("tick %d", i))); err != nil {
				return err
			}
		}
	}
}

func (m *memory) List(context.Context) ([]backend.PodRecord, error) {
	m.calls.WithLabelValues("List").Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]backend.PodRecord, 0, len(m.pods))
	for uid, rec := range m.pods {
		out = append(out, backend.PodRecord{UID: uid, Namespace: rec.pod.Namespace, Name: rec.pod.Name,
			RemoteID: rec.remoteID, Phase: v1.PodRunning, Created: rec.created})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

func (m *memory) Metrics(context.Context) ([]*dto.MetricFamily, error) {
	m.calls.WithLabelValues("Metrics").Inc()
	return m.reg.Gather()
}

func main() {
	serveProtocol := flag.Int("serve-protocol", backend.ProtocolVersion,
		"serve under this handshake protocol version (to test version refusal)")
	flag.Parse()
	if *serveProtocol != backend.ProtocolVersion {
		// A binary built against another version of the contract, as go-plugin sees it.
		impl, err := newMemory(context.Background(), backend.Env{Config: json.RawMessage("{}")})
		if err != nil {
			panic(err)
		}
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: backend.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{
				*serveProtocol: {backend.PluginName: &backend.GRPCPlugin{Impl: impl}},
			},
			GRPCServer: plugin.DefaultGRPCServer,
		})
		return
	}
	backend.Serve(newMemory)
}
