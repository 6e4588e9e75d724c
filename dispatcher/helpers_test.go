package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/openapi"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// memBackend is an in-process implementation of the backend interface (not of any engine), so that the
// front's own logic (routing, journal, aggregation, error mapping) is tested over HTTP without processes.
type memBackend struct {
	name string
	caps backend.Capabilities
	capa backend.Capacity
	// capaErr set: Capacity fails, as a backend whose engine does not answer.
	capaErr error

	mu          sync.Mutex
	pods        map[string]*v1.Pod
	ids         map[string]string
	creates     int
	deletes     []backend.DeleteRequest
	statusCalls int
	createDelay time.Duration
	deleteDelay time.Duration // a graceful stop taking this long
	statusDelay time.Duration
	createErr   error
	deleteErr   error
	statusErr   error
	logLines    []string
	families    []*dto.MetricFamily // what Metrics answers
	metricsErr  error

	panics bool // set: Status and Capacity panic, as a bug met while handling their answers would

	onList func() // set: List calls it after reading its pods, before answering
	// onStatus set: Status calls it after reading its pods, before answering, with the pods asked about.
	onStatus func(pods []*v1.Pod)

	launchErr error // set: the next launches fail
	launches  int
	describes int                 // Describe calls, the launch's own included
	desc      backend.Description // what the launch's Describe answered
	done      chan struct{}
}

func newMem(name string) *memBackend {
	cpu, mem := int64(2000), int64(4<<30)
	return &memBackend{
		name: name,
		caps: backend.Capabilities{VolumeKinds: []string{"configMap", "secret", "emptyDir", "projected"},
			Features:          []string{backend.FeatureInitContainers, backend.FeatureMultipleContainers, backend.FeatureRestartPolicyAlways, backend.FeatureTerminationGrace},
			ExtendedResources: nil},
		capa: backend.Capacity{CPUMilli: &cpu, MemoryBytes: &mem},
		pods: map[string]*v1.Pod{}, ids: map[string]string{},
	}
}

func (m *memBackend) Describe(context.Context) (backend.Description, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.describes++
	return backend.Description{Name: m.name, Version: "test", ProtocolVersion: backend.ProtocolVersion, Capabilities: m.caps}, nil
}

// Description is what the "process" answered to Describe when it was launched, as a backend.Process keeps.
func (m *memBackend) Description() backend.Description {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.desc
}

func (m *memBackend) Capacity(context.Context) (backend.Capacity, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.panics {
		panic("capacity: a bug")
	}
	if m.capaErr != nil {
		return backend.Capacity{}, m.capaErr
	}
	return m.capa, nil
}

func (m *memBackend) Create(ctx context.Context, req backend.CreateRequest) (backend.CreateResult, error) {
	m.mu.Lock()
	delay, cerr := m.createDelay, m.createErr
	m.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return backend.CreateResult{}, backend.Unavailable("create cancelled")
		}
	}
	if cerr != nil {
		return backend.CreateResult{}, cerr
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	uid := string(req.Pod.UID)
	if id, ok := m.ids[uid]; ok {
		return backend.CreateResult{RemoteID: id}, nil
	}
	m.creates++
	m.pods[uid] = req.Pod
	m.ids[uid] = fmt.Sprintf("%s-%d", m.name, m.creates)
	return backend.CreateResult{RemoteID: m.ids[uid]}, nil
}

func (m *memBackend) Delete(ctx context.Context, req backend.DeleteRequest) error {
	m.mu.Lock()
	delay := m.deleteDelay
	m.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return backend.Unavailable("delete cancelled")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deleteErr != nil {
		return m.deleteErr
	}
	m.deletes = append(m.deletes, req)
	delete(m.pods, string(req.Pod.UID))
	delete(m.ids, string(req.Pod.UID))
	return nil
}

func (m *memBackend) Status(ctx context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	m.mu.Lock()
	m.statusCalls++
	delay, serr, panics := m.statusDelay, m.statusErr, m.panics
	m.mu.Unlock()
	if panics {
		panic("status: a bug")
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, backend.Unavailable("status cancelled")
		}
	}
	if serr != nil {
		return nil, serr
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []interlink.PodStatus
	// Answer in reverse order: the dispatcher must put statuses back in request order itself.
	for i := len(pods) - 1; i >= 0; i-- {
		p := pods[i]
		st := interlink.PodStatus{PodUID: string(p.UID), PodName: p.Name, PodNamespace: p.Namespace}
		if len(p.Spec.Containers) == 0 {
			// Nothing to report a state for (FuzzAPI found the index below taking the process down); the
			// dispatcher completes the answer as for any backend.
			out = append(out, st)
			continue
		}
		if _, ok := m.pods[string(p.UID)]; !ok {
			st.Containers = []v1.ContainerStatus{{Name: p.Spec.Containers[0].Name, State: v1.ContainerState{
				Terminated: &v1.ContainerStateTerminated{ExitCode: 1, Reason: "NotFound"}}}}
		} else {
			// Only the first container: the dispatcher fills the others.
			st.Containers = []v1.ContainerStatus{{Name: p.Spec.Containers[0].Name, Ready: true, State: v1.ContainerState{
				Running: &v1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}}}}
			st.JobID = m.ids[string(p.UID)]
		}
		out = append(out, st)
	}
	if hook := m.onStatus; hook != nil {
		m.mu.Unlock()
		hook(pods)
		m.mu.Lock()
	}
	return out, nil
}

func (m *memBackend) Logs(ctx context.Context, req backend.LogRequest, w io.Writer) error {
	m.mu.Lock()
	_, ok := m.pods[req.PodUID]
	lines := m.logLines
	m.mu.Unlock()
	if !ok {
		return backend.NotFound("pod %s is not known to backend %s", req.PodUID, m.name)
	}
	for _, l := range lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	if !req.Opts.Follow {
		return nil
	}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
			if _, err := fmt.Fprintf(w, "follow %d\n", i); err != nil {
				return err
			}
		}
	}
}

func (m *memBackend) List(context.Context) ([]backend.PodRecord, error) {
	m.mu.Lock()
	var out []backend.PodRecord
	for uid, p := range m.pods {
		out = append(out, backend.PodRecord{UID: uid, Namespace: p.Namespace, Name: p.Name, RemoteID: m.ids[uid], Phase: v1.PodRunning})
	}
	hook := m.onList
	m.mu.Unlock()
	if hook != nil {
		hook()
	}
	return out, nil
}

func (m *memBackend) Metrics(context.Context) ([]*dto.MetricFamily, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.families, m.metricsErr
}

func (m *memBackend) Done() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.done
}

// Stop ends the current "process"; the pods survive, as they do in a real engine.
func (m *memBackend) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.done:
	default:
		close(m.done)
	}
}

// launch starts a new "process" unless launchErr is set, and asks it to describe itself, as
// backend.Launch does to check its protocol version.
func (m *memBackend) launch() (Instance, error) {
	m.mu.Lock()
	if m.launchErr != nil {
		m.mu.Unlock()
		return nil, m.launchErr
	}
	m.launches++
	m.done = make(chan struct{})
	m.mu.Unlock()
	desc, err := m.Describe(context.Background())
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.desc = desc
	m.mu.Unlock()
	return m, nil
}

// kill makes the backend exit and fail to start again until revive.
func (m *memBackend) kill() {
	m.mu.Lock()
	m.launchErr = fmt.Errorf("backend %s is killed by the test", m.name)
	m.mu.Unlock()
	m.Stop()
}

func (m *memBackend) revive() {
	m.mu.Lock()
	m.launchErr = nil
	m.mu.Unlock()
}

// testEnv is a dispatcher over in-process backends, served by httptest.
type testEnv struct {
	t       testing.TB
	cfg     Config
	mems    map[string]*memBackend
	journal *Journal
	sup     *Supervisor
	srv     *Server
	http    *httptest.Server
}

func testConfig(t testing.TB, dataDir string, names ...string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dataDir
	cfg.Instance = "test"
	cfg.Supervision.BackoffInitial = 10 * time.Millisecond
	cfg.Supervision.BackoffMax = 50 * time.Millisecond
	for _, n := range names {
		cfg.Backends = append(cfg.Backends, BackendConfig{Name: n, Binary: "/bin/true"})
	}
	cfg.Routing.Default = names[0]
	return cfg
}

func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startEnv starts a dispatcher whose backends are the given memBackends, with cfg tweaked by edit.
func startEnv(t testing.TB, cfg Config, mems map[string]*memBackend) *testEnv {
	t.Helper()
	return startEnvPartial(t, cfg, mems)
}

// startEnvPartial is startEnv waiting only for the named backends to be up (all when none is named).
func startEnvPartial(t testing.TB, cfg Config, mems map[string]*memBackend, waitUp ...string) *testEnv {
	t.Helper()
	return startEnvWith(t, cfg, mems, nil, waitUp...)
}

// startEnvWith is startEnvPartial with an observer.
func startEnvWith(t testing.TB, cfg Config, mems map[string]*memBackend, obs Observer, waitUp ...string) *testEnv {
	t.Helper()
	return startEnvLogged(t, cfg, mems, obs, quietLogger(t), waitUp...)
}

// startEnvLogged is startEnvWith with the Core's logger given, set before anything runs.
func startEnvLogged(t testing.TB, cfg Config, mems map[string]*memBackend, obs Observer, log *slog.Logger, waitUp ...string) *testEnv {
	t.Helper()
	j, err := OpenJournal(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	launch := func(ctx context.Context, spec LaunchSpec) (Instance, error) {
		m, ok := mems[spec.Name]
		if !ok {
			return nil, fmt.Errorf("no test backend %q", spec.Name)
		}
		return m.launch()
	}
	sup, err := NewSupervisor(cfg, launch, quietLogger(t), obs)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Config: cfg, Journal: j, Backends: sup, Logger: log, Observer: obs}
	m, withMetrics := obs.(*Metrics)
	if withMetrics {
		// Wired as the command wires it.
		opts.Routes = func(r chi.Router) { r.Handle("/metrics", m.Handler()) }
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if withMetrics {
		m.Attach(srv)
	}
	sup.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sup.WaitUp(ctx, waitUp...); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	e := &testEnv{t: t, cfg: cfg, mems: mems, journal: j, sup: sup, srv: srv, http: hs}
	t.Cleanup(e.close)
	return e
}

func (e *testEnv) close() {
	if e.http == nil {
		return
	}
	e.http.Close()
	e.sup.Stop()
	e.journal.Close()
	e.http = nil
}

// do sends a request like interLink does (JSON body, Content-Length, session header) and returns the status
// and body.
func (e *testEnv) do(method, path string, body any) (int, string) {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			e.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, e.http.URL+path, bytes.NewReader(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SessionHeader, "Test#1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	e.checkDocumented(method, path, resp, out)
	return resp.StatusCode, string(out)
}

// testOnlyPaths are routes tests add through Options.Routes beside the documented ones.
var testOnlyPaths = map[string]bool{"/boom": true}

// checkDocumented fails the test when an answer does not match the OpenAPI document (dispatcher/openapi):
// every answer a test receives through do is checked, so that the document cannot drift from the code.
func (e *testEnv) checkDocumented(method, path string, resp *http.Response, body []byte) {
	e.t.Helper()
	p, _, _ := strings.Cut(path, "?")
	if testOnlyPaths[p] {
		return
	}
	if err := openapi.Validate(method, p, resp.StatusCode, resp.Header, body); err != nil {
		e.t.Errorf("the answer to %s %s does not match dispatcher/openapi/openapi.json: %v", method, path, err)
	}
}

func testPod(uid, name string, containers ...string) *v1.Pod {
	if len(containers) == 0 {
		containers = []string{"main"}
	}
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), Name: name, Namespace: "default"}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: c, Image: "busybox:latest"})
	}
	p.Spec.RestartPolicy = v1.RestartPolicyNever
	return p
}

func createBody(p *v1.Pod) interlink.RetrievedPodData {
	return interlink.RetrievedPodData{Pod: *p}
}

func tempDir(t testing.TB) string {
	d := filepath.Join(t.TempDir(), "data")
	return d
}

// recObserver records reconciliations and routing decisions.
type recObserver struct {
	NopObserver
	mu         sync.Mutex
	reconciled map[string]int   // backend → runs
	errs       map[string]error // backend → its last run's error
	routed     []string         // "rule→backend"
}

func (o *recObserver) Reconciled(name string, adopted, missing int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.reconciled == nil {
		o.reconciled = map[string]int{}
	}
	o.reconciled[name]++
	if o.errs == nil {
		o.errs = map[string]error{}
	}
	o.errs[name] = err
}

func (o *recObserver) lastErr(name string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.errs[name]
}

func (o *recObserver) Routed(rule, backend string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.routed = append(o.routed, rule+"→"+backend)
}

func (o *recObserver) runs(name string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reconciled[name]
}
