package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// These tests check the command line, the parsing of answers and the printing against a small HTTP server
// that answers in the agreed shapes; the lab tests in dispatcher/lab_ctl_test.go run the binary against a
// real dispatcher with real backends.

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

const summaries = `{"pods": [
 {"uid":"u-1","namespace":"default","name":"hello","backend":"docker","remote_id":"c0ffee","created":"2026-12-01T09:58:30Z",
  "phase":"Running","status_time":"2026-12-01T09:59:59Z","ready":1,"containers":1,"restarts":2,
  "containers_detail":[{"name":"main","init":false,"state":"running","ready":true,"restart_count":2}]},
 {"uid":"u-2","namespace":"hpc","name":"sim","backend":"slurm","remote_id":"4242","created":"2026-11-30T10:00:00Z",
  "phase":"","ready":0,"containers":2,"restarts":0,
  "containers_detail":[{"name":"a","init":false,"state":"waiting","reason":"Priority","ready":false,"restart_count":0},
                       {"name":"b","init":false,"state":"terminated","reason":"Error","exit_code":3,"ready":false,"restart_count":0}]}
]}`

// fake is the in-test server: it records requests and answers from its handlers.
type fake struct {
	mu   sync.Mutex
	reqs []string // "METHOD path body"
	auth []string
	srv  *httptest.Server
	h    map[string]http.HandlerFunc
}

func newFake(t *testing.T, h map[string]http.HandlerFunc) *fake {
	f := &fake{h: h}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, r.Method+" "+r.URL.RequestURI()+" "+string(body))
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if h, ok := f.h[r.URL.Path]; ok {
		h(w, r)
		return
	}
	// As the dispatcher answers a route it does not have.
	w.WriteHeader(404)
	fmt.Fprintf(w, "%s is not an interLink plugin endpoint; use /create, /status, /delete or /getLogs (or /healthz, /readyz, /metrics)\n", r.URL.Path)
}

func (f *fake) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

func text(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// listPods filters the two summaries by name as the dispatcher would.
func listPods(w http.ResponseWriter, r *http.Request) {
	var all struct {
		Pods []map[string]any `json:"pods"`
	}
	json.Unmarshal([]byte(summaries), &all)
	out := []map[string]any{}
	for _, p := range all.Pods {
		if n := r.URL.Query().Get("name"); n != "" && p["name"] != n {
			continue
		}
		if ns := r.URL.Query().Get("namespace"); ns != "" && p["namespace"] != ns {
			continue
		}
		out = append(out, p)
	}
	json.NewEncoder(w).Encode(map[string]any{"pods": out})
}

// run runs dispatcherctl in-process and returns its exit code, stdout and stderr.
func run(t *testing.T, server string, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "DISPATCHERCTL_SERVER" {
			return server
		}
		return environ[k]
	}}
	now = func() time.Time { return t0 }
	t.Cleanup(func() { now = time.Now })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := e.run(ctx, args)
	return code, out.String(), errb.String()
}

func TestGetTableAndJSON(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{"/api/v1/pods": listPods})
	code, out, errs := run(t, f.srv.URL, nil, "get", "pods")
	want := "" +
		"NAME    NAMESPACE   BACKEND   PHASE     READY   RESTARTS   AGE\n" +
		"hello   default     docker    Running   1/1     2          1m30s\n" +
		"sim     hpc         slurm     Pending   0/2     0          24h\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, stderr %q, table:\n%s\nwant:\n%s", code, errs, out, want)
	}
	if strings.Contains(out, "\x1b[") {
		t.Fatal("colour on a stream that is not a terminal")
	}
	_, out, _ = run(t, f.srv.URL, nil, "get", "-o", "wide")
	if !strings.Contains(out, "UID   REMOTE-ID   REASON") || !strings.Contains(out, "u-2   4242        Priority") {
		t.Fatalf("wide:\n%s", out)
	}
	_, out, _ = run(t, f.srv.URL, nil, "get", "--color", "always")
	if !strings.Contains(out, "\x1b[32mRunning\x1b[0m") || !strings.Contains(out, "\x1b[33mPending\x1b[0m") {
		t.Fatalf("--color always:\n%q", out)
	}
	code, out, _ = run(t, f.srv.URL, nil, "get", "-o", "json")
	var list struct {
		Pods []map[string]any `json:"pods"`
	}
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list.Pods) != 2 || list.Pods[1]["remote_id"] != "4242" {
		t.Fatalf("json (%v):\n%s", err, out)
	}
	code, out, _ = run(t, f.srv.URL, nil, "get", "hello", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "name: hello\n") || !strings.Contains(out, "remote_id: c0ffee\n") {
		t.Fatalf("yaml of one pod:\n%s", out)
	}
	code, _, errs = run(t, f.srv.URL, nil, "get", "nope")
	if code != exitNotFound || !strings.Contains(errs, "knows no pod called nope in any namespace") {
		t.Fatalf("missing pod: exit %d, %q", code, errs)
	}
	if got := f.requests(); !strings.Contains(strings.Join(got, "\n"), "GET /api/v1/pods?name=nope ") {
		t.Fatalf("requests: %q", got)
	}
	code, _, errs = run(t, f.srv.URL, nil, "get", "-o", "table")
	if code != exitUsage || !strings.Contains(errs, "-o is one of wide, json, yaml") {
		t.Fatalf("bad -o: exit %d, %q", code, errs)
	}
}

func TestBackendsTable(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{"/api/v1/backends": text(200, `{"backends":[
		{"name":"docker","state":"up","version":"v1.2.0","engine":"Docker Engine 20.10.24","capacity":{"cpu":"2","memory":"7Gi","pods":"110"},"pods":3,"restarts":0},
		{"name":"slurm","state":"down","reason":"slurmctld does not answer","capacity":{},"pods":1,"restarts":4}]}`)})
	code, out, _ := run(t, f.srv.URL, nil, "backends")
	want := "" +
		"NAME     STATE   PODS   RESTARTS   CPU   MEMORY   MAX-PODS   GPUS   VERSION   REASON\n" +
		"docker   up      3      0          2     7Gi      110        -      v1.2.0    -\n" +
		"slurm    down    1      4          -     -        -          -      -         slurmctld does not answer\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d:\n%s\nwant:\n%s", code, out, want)
	}
	_, out, _ = run(t, f.srv.URL, nil, "backends", "-o", "wide")
	if !strings.Contains(out, "Docker Engine 20.10.24") {
		t.Fatalf("wide:\n%s", out)
	}
}

// An unreachable dispatcher, an older one without the admin API and a token are each handled readably.
func TestServerErrors(t *testing.T) {
	code, _, errs := run(t, "http://127.0.0.1:1", nil, "get")
	if code != exitUnreachable || !strings.Contains(errs, "cannot reach the dispatcher at http://127.0.0.1:1: nothing is listening there") {
		t.Fatalf("unreachable: exit %d, %q", code, errs)
	}
	code, _, errs = run(t, filepath.Join(t.TempDir(), "api.sock"), nil, "ping")
	if code != exitUnreachable || !strings.Contains(errs, "the socket does not exist") {
		t.Fatalf("no socket: exit %d, %q", code, errs)
	}
	f := newFake(t, nil)
	code, _, errs = run(t, f.srv.URL, nil, "backends")
	if code != exitFailed || !strings.Contains(errs, "serves no admin API (/api/v1)") {
		t.Fatalf("no admin API: exit %d, %q", code, errs)
	}
	code, _, errs = run(t, "ftp://x", nil, "get")
	if code != exitUsage || !strings.Contains(errs, "neither a URL") {
		t.Fatalf("bad server: exit %d, %q", code, errs)
	}
	tok := newFake(t, map[string]http.HandlerFunc{"/status": func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer 0123456789abcdef" {
			w.WriteHeader(401)
			io.WriteString(w, "a bearer token is required: send the header Authorization: Bearer <token>, with a token of access.token_file\n")
			return
		}
		io.WriteString(w, `{"status":"ok","resources":{"cpu":"2","memory":"7Gi"}}`)
	}})
	code, _, errs = run(t, tok.srv.URL, nil, "ping")
	if code != exitFailed || !strings.Contains(errs, "fails interLink's ping: a bearer token is required") {
		t.Fatalf("no token: exit %d, %q", code, errs)
	}
	code, out, errs := run(t, tok.srv.URL, map[string]string{"DISPATCHERCTL_TOKEN": "0123456789abcdef"}, "ping")
	if code != 0 || !strings.Contains(out, "answers interLink's ping: ok") || !strings.Contains(out, "capacity: cpu 2, memory 7Gi") {
		t.Fatalf("token: exit %d, %q %q", code, out, errs)
	}
}

// The socket path form of --server reaches a dispatcher on a unix socket.
func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "unix" {
			w.WriteHeader(400)
		}
		io.WriteString(w, "[]")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	for _, s := range []string{sock, "unix://" + sock} {
		if code, out, errs := run(t, "", nil, "ping", "--server", s); code != 0 || !strings.Contains(out, "answers interLink's ping") {
			t.Fatalf("%s: exit %d %q %q", s, code, out, errs)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const podYAML = `apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  restartPolicy: Never
  containers: [{name: main, image: busybox}]
`

// A refused pod prints the dispatcher's reason and exits 1; a bad manifest sends nothing and exits 2.
func TestApplyRefusedAndBad(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{"/create": text(400, "the pod's annotation dispatcher.interlink.eu/backend names backend \"gpu\", which is not configured; use one of: docker, podman\n")})
	code, _, errs := run(t, f.srv.URL, nil, "apply", "-f", writeFile(t, "p.yaml", podYAML), "--backend", "gpu")
	if code != exitFailed || !strings.Contains(errs, `the dispatcher refused pod default/hello: the pod's annotation dispatcher.interlink.eu/backend names backend "gpu", which is not configured`) {
		t.Fatalf("refused: exit %d, %q", code, errs)
	}
	creates := func() []string {
		var out []string
		for _, r := range f.requests() {
			if strings.HasPrefix(r, "POST /create ") {
				out = append(out, r)
			}
		}
		return out
	}
	if reqs := creates(); len(reqs) != 1 || !strings.Contains(reqs[0], `"dispatcher.interlink.eu/backend":"gpu"`) {
		t.Fatalf("requests: %q", f.requests())
	}
	code, _, errs = run(t, f.srv.URL, nil, "apply", "-f", writeFile(t, "s.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"))
	if code != exitUsage || !strings.Contains(errs, "s.yaml, document 1: is a Service, not a Pod") {
		t.Fatalf("not a pod: exit %d, %q", code, errs)
	}
	code, _, errs = run(t, f.srv.URL, nil, "apply", "-f", writeFile(t, "c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"))
	if code != exitUsage || !strings.Contains(errs, "no document is a Pod") {
		t.Fatalf("no pod: exit %d, %q", code, errs)
	}
	if len(creates()) != 1 {
		t.Fatal("a bad manifest was sent")
	}
	// A pod of that name is known already: a second apply would run it twice.
	known := newFake(t, map[string]http.HandlerFunc{"/api/v1/pods": listPods})
	code, _, errs = run(t, known.srv.URL, nil, "apply", "-f", writeFile(t, "p.yaml", podYAML))
	if code != exitFailed || !strings.Contains(errs, "pod default/hello already exists (uid u-1, Running on backend docker); delete it first") {
		t.Fatalf("existing: exit %d, %q", code, errs)
	}
	for _, r := range known.requests() {
		if strings.HasPrefix(r, "POST /create") {
			t.Fatal("a pod that exists was created again")
		}
	}
	code, _, errs = run(t, f.srv.URL, nil, "apply")
	if code != exitUsage || !strings.Contains(errs, "apply needs -f FILE") {
		t.Fatalf("no -f: exit %d, %q", code, errs)
	}
}

// --wait prints what the pod waits on as it changes, once each, and ends with its outcome.
func TestApplyWait(t *testing.T) {
	states := []v1.ContainerState{
		{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}},
		{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}},
		{Waiting: &v1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "pull\nfailed"}},
		{Running: &v1.ContainerStateRunning{}},
		{Terminated: &v1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}},
	}
	var mu sync.Mutex
	n := 0
	var seenJobID string
	f := newFake(t, map[string]http.HandlerFunc{
		"/create": func(w http.ResponseWriter, r *http.Request) {
			var d interlink.RetrievedPodData
			json.NewDecoder(r.Body).Decode(&d)
			json.NewEncoder(w).Encode(interlink.CreateStruct{PodUID: string(d.Pod.UID), PodJID: "job-7"})
		},
		"/status": func(w http.ResponseWriter, r *http.Request) {
			var pods []v1.Pod
			json.NewDecoder(r.Body).Decode(&pods)
			mu.Lock()
			s := states[min(n, len(states)-1)]
			n++
			seenJobID = pods[0].Annotations["JobID"]
			mu.Unlock()
			json.NewEncoder(w).Encode([]interlink.PodStatus{{PodName: pods[0].Name, PodUID: string(pods[0].UID), PodNamespace: pods[0].Namespace,
				Containers: []v1.ContainerStatus{{Name: "main", State: s, Ready: s.Running != nil}}}})
		},
		"/api/v1/pods": text(200, `{"pods":[]}`),
	})
	code, out, errs := run(t, f.srv.URL, nil, "apply", "-f", writeFile(t, "p.yaml", podYAML), "--wait", "--poll-interval", "10ms")
	want := []string{
		"pod/hello: Pending: container main ContainerCreating",
		"pod/hello: Pending: container main ErrImagePull: pull failed",
		"pod/hello: Running: 1/1 ready",
		"pod/hello: Failed: container main exited 3 (Error)",
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitFailed || len(lines) != 5 || !strings.HasPrefix(lines[0], "pod/hello created (namespace default, uid ") ||
		strings.Join(lines[1:], "\n") != strings.Join(want, "\n") || !strings.Contains(errs, "pod hello failed") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if seenJobID != "job-7" {
		t.Fatalf("status asked without the create's remote id: %q", seenJobID)
	}
}

func TestLogsAndDelete(t *testing.T) {
	var logReq interlink.LogStruct
	var delPod v1.Pod
	f := newFake(t, map[string]http.HandlerFunc{
		"/api/v1/pods": listPods,
		"/getLogs": func(w http.ResponseWriter, r *http.Request) {
			json.NewDecoder(r.Body).Decode(&logReq)
			io.WriteString(w, "line 1\nline 2\n")
		},
		"/delete": func(w http.ResponseWriter, r *http.Request) {
			json.NewDecoder(r.Body).Decode(&delPod)
			io.WriteString(w, "pod default/hello (u-1) deleted from backend docker\n")
		},
	})
	code, out, errs := run(t, f.srv.URL, nil, "logs", "hello", "--tail", "5", "--since", "2m", "--timestamps", "-f")
	if code != 0 || out != "line 1\nline 2\n" {
		t.Fatalf("logs: exit %d %q %q", code, out, errs)
	}
	want := interlink.LogStruct{Namespace: "default", PodUID: "u-1", PodName: "hello", ContainerName: "main",
		Opts: interlink.LogOpts{Tail: 5, SinceSeconds: 120, Timestamps: true, Follow: true}}
	if logReq != want {
		t.Fatalf("log request %+v, want %+v", logReq, want)
	}
	// With --uid and the name, the pod is found in the list, which asks no backend.
	if code, _, errs := run(t, f.srv.URL, nil, "logs", "hello", "--uid", "u-1"); code != 0 {
		t.Fatalf("logs --uid: exit %d %q", code, errs)
	}
	for _, r := range f.requests() {
		if strings.HasPrefix(r, "GET /api/v1/pods/") {
			t.Fatalf("logs --uid asked for the pod's live status: %q", r)
		}
	}
	code, _, errs = run(t, f.srv.URL, nil, "logs", "sim")
	if code != exitUsage || !strings.Contains(errs, "pod sim has several containers (a, b); choose one with -c") {
		t.Fatalf("two containers: exit %d %q", code, errs)
	}
	code, _, errs = run(t, f.srv.URL, nil, "logs", "hello", "--tail", "1", "--limit-bytes", "9")
	if code != exitUsage || !strings.Contains(errs, "--tail and --limit-bytes cannot be given together") {
		t.Fatalf("tail and bytes: exit %d %q", code, errs)
	}
	code, out, errs = run(t, f.srv.URL, nil, "delete", "hello", "--grace-period", "7")
	if code != 0 || out != "pod default/hello (u-1) deleted from backend docker\n" {
		t.Fatalf("delete: exit %d %q %q", code, out, errs)
	}
	if delPod.UID != "u-1" || delPod.Name != "hello" || delPod.Namespace != "default" || delPod.Annotations["JobID"] != "c0ffee" ||
		delPod.DeletionGracePeriodSeconds == nil || *delPod.DeletionGracePeriodSeconds != 7 {
		t.Fatalf("delete body: %+v", delPod.ObjectMeta)
	}
	code, _, errs = run(t, f.srv.URL, nil, "delete", "ghost", "-n", "hpc")
	if code != exitNotFound || !strings.Contains(errs, "knows no pod called ghost in namespace hpc") {
		t.Fatalf("delete missing: exit %d %q", code, errs)
	}
}

func TestDescribe(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"/api/v1/pods": listPods,
		"/api/v1/pods/u-2": text(200, `{"pod": {"uid":"u-2","namespace":"hpc","name":"sim","backend":"slurm","remote_id":"4242",
			"created":"2026-11-30T10:00:00Z","phase":"Pending","ready":0,"containers":2,"restarts":0,
			"containers_detail":[{"name":"a","init":false,"state":"waiting","reason":"Priority","ready":false,"restart_count":0},
			{"name":"b","init":false,"state":"terminated","reason":"Error","exit_code":3,"ready":false,"restart_count":0}]},
			"status": {"name":"sim","UID":"u-2","namespace":"hpc","containers":[
			{"name":"a","state":{"waiting":{"reason":"Priority","message":"the job waits for higher-priority jobs"}},"ready":false,"restartCount":0,"image":"busybox","imageID":""}],
			"initContainers":[]}}`),
	})
	code, out, errs := run(t, f.srv.URL, nil, "describe", "sim")
	for _, w := range []string{"Name:         sim\n", "Backend:      slurm\n", "Remote ID:    4242\n", "Containers:\n  a:\n",
		"    State:          Waiting\n", "      Reason:       Priority\n", "      Message:      the job waits for higher-priority jobs\n",
		"    Restart Count:  0\n", "  b:\n    State:          Terminated\n    Reason:         Error\n    Exit Code:      3\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("describe lacks %q", w)
		}
	}
	if code != 0 || t.Failed() {
		t.Fatalf("exit %d %q\n%s", code, errs, out)
	}
}

// get -w prints the list, then a pod's row again each time it changes (not when only its age does), and a
// last row Deleted when it leaves the list; an interrupt ends it with exit 0.
func TestGetWatch(t *testing.T) {
	var mu sync.Mutex
	n := 0
	phases := []string{"Pending", "Pending", "Running", "Running", "Running", "Succeeded", "", ""}
	f := newFake(t, map[string]http.HandlerFunc{"/api/v1/pods": func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ph := phases[min(n, len(phases)-1)]
		n++
		mu.Unlock()
		if ph == "" {
			io.WriteString(w, `{"pods":[]}`)
			return
		}
		ready := map[string]int{"Running": 1}[ph]
		fmt.Fprintf(w, `{"pods":[{"uid":"u-9","namespace":"default","name":"w","backend":"podman","remote_id":"r","created":"2026-12-01T09:59:00Z","phase":%q,"ready":%d,"containers":1,"restarts":0}]}`, ph, ready)
	}})
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return map[string]string{"DISPATCHERCTL_SERVER": f.srv.URL}[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			mu.Lock()
			done := n >= len(phases)+2
			mu.Unlock()
			if done {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	code := e.run(ctx, []string{"get", "-w", "--poll-interval", "20ms"})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var phaseCol []string
	for _, l := range lines[1:] {
		phaseCol = append(phaseCol, strings.Fields(l)[3])
	}
	if code != 0 || !strings.HasPrefix(lines[0], "NAME ") || strings.Join(phaseCol, " ") != "Pending Running Succeeded Deleted" {
		t.Fatalf("exit %d, stderr %q, output:\n%s", code, errb.String(), out.String())
	}
	if !strings.HasPrefix(lines[3], "w      default     podman    Succeeded   0/1     0          ") {
		t.Fatalf("a watched row is not aligned with the header:\n%s", out.String())
	}
}

// An https:// dispatcher is verified against --cacert; without it the unknown CA is refused readably.
func TestTLSServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "[]") }))
	t.Cleanup(srv.Close)
	ca := writeFile(t, "ca.pem", string(pemCert(srv.Certificate().Raw)))
	if code, out, errs := run(t, srv.URL, nil, "ping", "--cacert", ca); code != 0 || !strings.Contains(out, "answers interLink's ping") {
		t.Fatalf("with the CA: exit %d %q %q", code, out, errs)
	}
	code, _, errs := run(t, srv.URL, nil, "ping")
	if code != exitUnreachable || !strings.Contains(errs, "has a certificate this client does not trust (x509: ") || !strings.Contains(errs, "give its CA with --cacert") {
		t.Fatalf("without the CA: exit %d %q", code, errs)
	}
	code, _, errs = run(t, "http://127.0.0.1:4000", nil, "ping", "--cert", ca, "--key", ca)
	if code != exitUsage || !strings.Contains(errs, "a client certificate is sent over https:// only") {
		t.Fatalf("client certificate over http: exit %d %q", code, errs)
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// --wait gives up after --timeout with exit 5, naming what the pod still waits on; a manifest can come on stdin.
func TestApplyWaitTimeoutFromStdin(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"/create": func(w http.ResponseWriter, r *http.Request) {
			var d interlink.RetrievedPodData
			json.NewDecoder(r.Body).Decode(&d)
			json.NewEncoder(w).Encode(interlink.CreateStruct{PodUID: string(d.Pod.UID), PodJID: "j"})
		},
		"/status": func(w http.ResponseWriter, r *http.Request) {
			var pods []v1.Pod
			json.NewDecoder(r.Body).Decode(&pods)
			json.NewEncoder(w).Encode([]interlink.PodStatus{{PodName: pods[0].Name, PodUID: string(pods[0].UID), PodNamespace: pods[0].Namespace,
				Containers: []v1.ContainerStatus{{Name: "main", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "Priority"}}}}}})
		},
	})
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(podYAML), stdout: &out, stderr: &errb, getenv: func(k string) string { return map[string]string{"DISPATCHERCTL_SERVER": f.srv.URL}[k] }}
	code := e.run(context.Background(), []string{"apply", "-f", "-", "--wait", "--timeout", "300ms", "--poll-interval", "20ms"})
	if code != exitTimeout || !strings.Contains(errb.String(), "gave up waiting after 300ms (--timeout): still waiting for pod hello (Pending: container main Priority)") ||
		strings.Count(out.String(), "pod/hello: Pending: container main Priority\n") != 1 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
}
