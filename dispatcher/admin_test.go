package dispatcher

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/adminapi"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// adminGet GETs an admin API path and decodes a 200 body into out; it returns the status and the raw body.
func adminGet(t *testing.T, e *testEnv, path string, out any) (int, string) {
	t.Helper()
	code, body := e.do(http.MethodGet, path, nil)
	if code == http.StatusOK && out != nil {
		if err := json.Unmarshal([]byte(body), out); err != nil {
			t.Fatalf("GET %s: %v in %q", path, err, body)
		}
	}
	return code, body
}

// adminError checks an admin API error: code, a JSON object {"error": one sentence} naming each of what.
func adminError(t *testing.T, e *testEnv, path string, code int, what ...string) {
	t.Helper()
	got, body := e.do(http.MethodGet, path, nil)
	var msg struct {
		Error string `json:"error"`
	}
	if got != code || json.Unmarshal([]byte(body), &msg) != nil || msg.Error == "" || strings.Contains(msg.Error, "\n") {
		t.Fatalf("GET %s answered %d %q, want %d with {\"error\": a sentence}", path, got, body, code)
	}
	for _, w := range what {
		if !strings.Contains(msg.Error, w) {
			t.Errorf("GET %s: %q does not name %q", path, msg.Error, w)
		}
	}
}

func onBackend(p *v1.Pod, name, namespace string) *v1.Pod {
	p.Annotations = map[string]string{DefaultRoutingAnnotation: name}
	p.Namespace = namespace
	return p
}

// The list comes from the journal and the last known statuses, sorted by namespace and name, filtered
// exactly; a backend is never asked for it.
func TestAdminPods(t *testing.T) {
	mems := map[string]*memBackend{"alpha": newMem("alpha"), "beta": newMem("beta")}
	e := startEnv(t, testConfig(t, tempDir(t), "alpha", "beta"), mems)
	pods := []*v1.Pod{
		onBackend(testPod("uid-b", "b", "main", "side"), "alpha", "ns1"),
		onBackend(testPod("uid-a", "a"), "beta", "ns1"),
		onBackend(testPod("uid-z", "z"), "alpha", "ns0"),
	}
	for _, p := range pods {
		if code, body := e.do(http.MethodPost, "/create", createBody(p)); code != http.StatusOK {
			t.Fatalf("create %s: %d %q", p.Name, code, body)
		}
	}
	var list adminapi.PodList
	if code, body := adminGet(t, e, "/api/v1/pods", &list); code != http.StatusOK {
		t.Fatalf("list: %d %q", code, body)
	}
	var order []string
	for _, s := range list.Pods {
		order = append(order, s.Namespace+"/"+s.Name)
	}
	if strings.Join(order, " ") != "ns0/z ns1/a ns1/b" {
		t.Fatalf("list order %v, want ns0/z ns1/a ns1/b", order)
	}
	// No status asked yet: no phase, no status time, but the containers of the create are counted.
	b := list.Pods[2]
	if b.UID != "uid-b" || b.Backend != "alpha" || b.RemoteID != "alpha-1" || b.Phase != "" || b.StatusTime != nil ||
		b.Containers != 2 || b.Created.IsZero() || b.ContainersDetail == nil {
		t.Fatalf("pod b before any status: %+v", b)
	}

	if code, body := e.do(http.MethodPost, "/status", pods); code != http.StatusOK {
		t.Fatalf("status: %d %q", code, body)
	}
	calls := mems["alpha"].statusCallCount() + mems["beta"].statusCallCount()
	list = adminapi.PodList{}
	adminGet(t, e, "/api/v1/pods?backend=alpha&namespace=ns1", &list)
	if len(list.Pods) != 1 {
		t.Fatalf("backend=alpha&namespace=ns1 listed %d pods, want 1: %+v", len(list.Pods), list.Pods)
	}
	b = list.Pods[0]
	// The test backend reports the first container running and ready; the dispatcher completes the other.
	if b.Phase != v1.PodRunning || b.StatusTime == nil || b.Ready != 1 || b.Containers != 2 || b.Restarts != 0 ||
		len(b.ContainersDetail) != 2 {
		t.Fatalf("pod b after a status: %+v", b)
	}
	if c := b.ContainersDetail[0]; c.Name != "main" || c.State != "running" || !c.Ready || c.Init || c.ExitCode != nil {
		t.Errorf("container main: %+v", c)
	}
	if c := b.ContainersDetail[1]; c.Name != "side" || c.State != "waiting" || c.Reason != "ContainerCreating" || c.Ready {
		t.Errorf("container side: %+v", c)
	}
	if got := mems["alpha"].statusCallCount() + mems["beta"].statusCallCount(); got != calls {
		t.Fatalf("listing pods asked the backends for %d statuses", got-calls)
	}

	for query, want := range map[string]int{
		"name=a": 1, "namespace=ns1": 2, "phase=Running": 3, "phase=Failed": 0, "backend=nowhere": 0,
		"namespace=ns0&name=z&backend=alpha&phase=Running": 1, "phase=Unknown": 0,
	} {
		list = adminapi.PodList{}
		if code, body := adminGet(t, e, "/api/v1/pods?"+query, &list); code != http.StatusOK || list.Pods == nil || len(list.Pods) != want {
			t.Errorf("?%s: %d %q, want %d pods", query, code, body, want)
		}
	}
	adminError(t, e, "/api/v1/pods?phase=running", http.StatusBadRequest, `"running"`, "Running")
	adminError(t, e, "/api/v1/pods?colour=red", http.StatusBadRequest, `"colour"`, "backend, namespace, name, phase")
	adminError(t, e, "/api/v1/pods?name=a&name=b", http.StatusBadRequest, `"name"`, "once")
}

// One pod: its status asked of its backend now, as /status answers it, and its summary refreshed by it.
func TestAdminPod(t *testing.T) {
	mems := map[string]*memBackend{"alpha": newMem("alpha")}
	e := startEnv(t, testConfig(t, tempDir(t), "alpha"), mems)
	p := testPod("uid-one", "one", "main", "side")
	if code, body := e.do(http.MethodPost, "/create", createBody(p)); code != http.StatusOK {
		t.Fatalf("create: %d %q", code, body)
	}
	calls := mems["alpha"].statusCallCount()
	var d adminapi.PodDetail
	if code, body := adminGet(t, e, "/api/v1/pods/uid-one", &d); code != http.StatusOK {
		t.Fatalf("pod: %d %q", code, body)
	}
	if mems["alpha"].statusCallCount() != calls+1 {
		t.Fatalf("the backend was asked %d times, want once", mems["alpha"].statusCallCount()-calls)
	}
	if d.Status.PodUID != "uid-one" || d.Status.JobID != "alpha-1" || len(d.Status.Containers) != 2 ||
		d.Status.Containers[0].State.Running == nil || d.Status.Containers[1].State.Waiting == nil {
		t.Fatalf("status %+v", d.Status)
	}
	if d.Pod.Name != "one" || d.Pod.Phase != v1.PodRunning || d.Pod.StatusTime == nil || d.Pod.Ready != 1 || d.Pod.Containers != 2 {
		t.Fatalf("summary %+v", d.Pod)
	}
	// Its backend cannot answer: the last known status, as /status would answer.
	mems["alpha"].mu.Lock()
	mems["alpha"].statusErr = backend.Unavailable("the engine is gone")
	mems["alpha"].mu.Unlock()
	d = adminapi.PodDetail{}
	if code, body := adminGet(t, e, "/api/v1/pods/uid-one", &d); code != http.StatusOK || d.Status.Containers[0].State.Running == nil {
		t.Fatalf("pod with its backend failing: %d %q", code, body)
	}
	adminError(t, e, "/api/v1/pods/uid-nobody", http.StatusNotFound, "no pod with UID uid-nobody is known to the dispatcher")
	adminError(t, e, "/api/v1/pods/a%20b", http.StatusBadRequest, "a b")
	adminError(t, e, "/api/v1/nothing", http.StatusNotFound, "/api/v1/nothing")
}

// Every configured backend in config order, disabled ones too, with its state, capacity and pods.
func TestAdminBackends(t *testing.T) {
	mems := map[string]*memBackend{"alpha": newMem("alpha"), "gamma": newMem("gamma")}
	mems["alpha"].capa.Accelerators = map[string]int64{"nvidia.com/gpu": 2}
	mems["gamma"].capaErr = backend.Unavailable("the engine at unix:///nowhere does not answer")
	cfg := testConfig(t, tempDir(t), "alpha", "beta", "gamma")
	off := false
	cfg.Backends[1].Enabled = &off
	e := startEnv(t, cfg, mems)
	if code, body := e.do(http.MethodPost, "/create", createBody(testPod("uid-x", "x"))); code != http.StatusOK {
		t.Fatalf("create: %d %q", code, body)
	}
	var list adminapi.BackendList
	deadline := time.Now().Add(5 * time.Second)
	for {
		list = adminapi.BackendList{}
		if code, body := adminGet(t, e, "/api/v1/backends", &list); code != http.StatusOK || len(list.Backends) != 3 {
			t.Fatalf("backends: %d %q", code, body)
		}
		if list.Backends[0].Capacity != nil && list.Backends[2].State == StateDegraded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the health checks did not show: %+v", list.Backends)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a, b, g := list.Backends[0], list.Backends[1], list.Backends[2]
	if a.Name != "alpha" || a.State != StateUp || a.Reason != "" || a.Version != "test" || a.Pods != 1 ||
		*a.Capacity != (adminapi.Capacity{CPU: "2", Memory: "4Gi", GPUs: "2"}) {
		t.Errorf("alpha: %+v %+v", a, a.Capacity)
	}
	if b.Name != "beta" || b.State != StateDisabled || !strings.Contains(b.Reason, "enabled: false") || b.Capacity != nil {
		t.Errorf("beta: %+v", b)
	}
	if g.Name != "gamma" || !strings.Contains(g.Reason, "unix:///nowhere") || g.Capacity != nil || g.Pods != 0 {
		t.Errorf("gamma: %+v", g)
	}
	// The capacity is left out of the JSON when unknown, the reason when up.
	_, body := e.do(http.MethodGet, "/api/v1/backends", nil)
	var raw struct {
		Backends []map[string]any `json:"backends"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.Backends[0]["reason"]; ok {
		t.Errorf("alpha is up but has a reason: %s", body)
	}
	if _, ok := raw.Backends[2]["capacity"]; ok {
		t.Errorf("gamma's capacity is unknown but given: %s", body)
	}
}

// The admin API is behind the access control of the interLink routes: the same token, refused alike.
func TestAdminAccess(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Access.TokenFile = writeSecret(t, t.TempDir(), "tokens", testToken+"\n", 0o600)
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	for _, path := range []string{"/api/v1/pods", "/api/v1/pods/uid-1", "/api/v1/backends"} {
		code, h, body := call(t, http.DefaultClient, "GET", e.http.URL+path, "", "")
		var msg struct {
			Error string `json:"error"`
		}
		if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" || json.Unmarshal([]byte(body), &msg) != nil ||
			!strings.Contains(msg.Error, "Authorization: Bearer") {
			t.Errorf("%s without a token: %d %q", path, code, body)
		}
		if code, _, body := call(t, http.DefaultClient, "GET", e.http.URL+path, "wrong-token-0123456789", ""); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d %q", path, code, body)
		}
	}
	if code, _, body := call(t, http.DefaultClient, "GET", e.http.URL+"/api/v1/backends", testToken, ""); code != http.StatusOK {
		t.Errorf("backends with the token: %d %q", code, body)
	}
	if code, _, body := call(t, http.DefaultClient, "GET", e.http.URL+"/api/v1/pods", testToken, ""); code != http.StatusOK || !strings.Contains(body, `"pods":[]`) {
		t.Errorf("pods with the token: %d %q", code, body)
	}
}

func (m *memBackend) statusCallCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statusCalls
}

// BenchmarkAdminPods lists 10,000 journaled pods with a last known status each, as GET /api/v1/pods does.
func BenchmarkAdminPods(b *testing.B) {
	dir := tempDir(b)
	j, err := OpenJournal(dir)
	if err != nil {
		b.Fatal(err)
	}
	var entries []Entry
	for i := range 10000 {
		p := testPod(fmt.Sprintf("uid-%05d", i), fmt.Sprintf("pod-%05d", i), "main", "side")
		st := complete(pod.WaitingStatus(p, "", "ContainerCreating", "pulling"), p)
		entries = append(entries, Entry{UID: string(p.UID), Backend: "alpha", Namespace: "default", Name: p.Name,
			Created: time.Now(), Containers: []string{"main", "side"}, LastStatus: &st, StatusTime: time.Now()})
	}
	if err := j.PutAll(entries); err != nil {
		b.Fatal(err)
	}
	j.Close()
	// Started on that journal: the statuses are in memory, as in a dispatcher that restarted.
	e := startEnv(b, testConfig(b, dir, "alpha"), map[string]*memBackend{"alpha": newMem("alpha")})
	b.ResetTimer()
	for range b.N {
		code, body := e.do(http.MethodGet, "/api/v1/pods", nil)
		if code != http.StatusOK || strings.Count(body, `"phase":"Pending"`) != 10000 {
			b.Fatal(code, len(body))
		}
	}
}

// The backend is asked about a pod as its create carried it: a backend reads the restart policy and the probes
// to make a status of what it runs; here the restart policy and a container's env stand for them (a finished container of a pod that never restarts is not CrashLoopBackOff).
func TestAdminPodAsksAboutThePodAsCreated(t *testing.T) {
	mems := map[string]*memBackend{"alpha": newMem("alpha")}
	e := startEnv(t, testConfig(t, tempDir(t), "alpha"), mems)
	p := testPod("uid-never", "never", "main")
	p.Spec.RestartPolicy = v1.RestartPolicyNever
	p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "GREETING", Value: "hello"}}
	if code, body := e.do(http.MethodPost, "/create", createBody(p)); code != http.StatusOK {
		t.Fatalf("create: %d %q", code, body)
	}
	asked := make(chan *v1.Pod, 1)
	mems["alpha"].mu.Lock()
	mems["alpha"].onStatus = func(pods []*v1.Pod) {
		select {
		case asked <- pods[0]:
		default:
		}
	}
	mems["alpha"].mu.Unlock()
	if code, body := adminGet(t, e, "/api/v1/pods/uid-never", &adminapi.PodDetail{}); code != http.StatusOK {
		t.Fatalf("pod: %d %q", code, body)
	}
	got := <-asked
	if got.Spec.RestartPolicy != v1.RestartPolicyNever || len(got.Spec.Containers[0].Env) != 1 {
		t.Fatalf("the backend was asked about restartPolicy %q, env %v; want the pod as created",
			got.Spec.RestartPolicy, got.Spec.Containers[0].Env)
	}
	if got.Annotations[annotationJobID] != "alpha-1" {
		t.Fatalf("the backend was asked without the pod's remote id: annotations %v", got.Annotations)
	}
	// Deleted, the pod leaves the journal with its entry.
	if code, body := e.do(http.MethodDelete, "/delete", p); code != http.StatusOK {
		t.Fatalf("delete: %d %q", code, body)
	}
	if _, found, err := e.journal.Pod("uid-never"); err != nil || found {
		t.Fatalf("after the delete the journal still has the pod (found %v, err %v)", found, err)
	}
}
