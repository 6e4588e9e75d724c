package openapi_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/openapi"
	"github.com/interlink-hq/interlink-dispatcher/examples/backend-template/dispatchertest"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// TestDocument checks that the embedded document is OpenAPI 3.1 JSON whose every response schema compiles:
// an answer that fits no schema fails here rather than in a route test.
func TestDocument(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	ops := openapi.Operations()
	for _, want := range []string{"POST /create", "GET /status", "POST /status", "POST /delete", "DELETE /delete",
		"GET /getLogs", "POST /getLogs", "GET /healthz", "GET /readyz", "GET /metrics", "GET /api/v1/pods",
		"GET /api/v1/pods/{uid}", "GET /api/v1/backends"} {
		if !contains(ops, want) {
			t.Errorf("the document has no %s (it has %v)", want, ops)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRealAnswersValidate drives a real dispatcher (the interlink-dispatcher command with the template
// backend, which runs containers as local processes) through every route and variant, good and bad input,
// and validates each answer against the document.
func TestRealAnswersValidate(t *testing.T) {
	d := dispatchertest.Start(t, "")
	seen := map[string]bool{}
	check := func(a dispatchertest.Answer, wantStatus int) dispatchertest.Answer {
		t.Helper()
		if a.Status != wantStatus {
			t.Errorf("%s %s = %d %q, want %d", a.Method, a.Path, a.Status, a.Body, wantStatus)
		}
		if err := openapi.Validate(a.Method, a.Path, a.Status, a.Header, a.Body); err != nil {
			t.Errorf("a real answer does not match the document: %v\nbody: %s", err, a.Body)
		}
		seen[a.Method+" "+a.Path] = true
		return a
	}

	check(d.Do(t, "GET", "/healthz", nil), 200)
	check(d.Do(t, "GET", "/readyz", nil), 200)
	check(d.Do(t, "GET", "/metrics", nil), 200)
	// The ping in every shape interLink sends it.
	check(d.Do(t, "GET", "/status", nil), 200)
	check(d.Do(t, "POST", "/status", "[]"), 200)
	check(d.Do(t, "GET", "/status", "null"), 200)

	// A pod created in each body shape: the object (interLink 0.5 on) and the one-element array.
	running := newPod("running", "echo up; sleep 600")
	check(d.Do(t, "POST", "/create", interlink.RetrievedPodData{Pod: *running}), 200)
	done := newPod("done", "echo line one; echo line two")
	check(d.Do(t, "POST", "/create", []interlink.RetrievedPodData{{Pod: *done}}), 200)
	check(d.Do(t, "POST", "/create", interlink.RetrievedPodData{Pod: *done}), 200) // a retry, from the journal
	waitFor(t, d, done, func(st interlink.PodStatus) bool { return st.Containers[0].State.Terminated != nil })
	waitFor(t, d, running, func(st interlink.PodStatus) bool { return st.Containers[0].State.Running != nil })

	// Statuses: one, a batch with a pod nobody knows, by GET and POST.
	unknown := newPod("unknown", "true")
	check(d.Do(t, "GET", "/status", []*v1.Pod{done}), 200)
	check(d.Do(t, "POST", "/status", []*v1.Pod{running, unknown, done}), 200)
	check(d.Do(t, "GET", "/readyz", nil), 200)
	check(d.Do(t, "GET", "/metrics", nil), 200)

	// Logs with options, and the refusals.
	logReq := func(p *v1.Pod, c string, o interlink.LogOpts) interlink.LogStruct {
		return interlink.LogStruct{Namespace: p.Namespace, PodUID: string(p.UID), PodName: p.Name, ContainerName: c, Opts: o}
	}
	check(d.Do(t, "POST", "/getLogs", logReq(done, "main", interlink.LogOpts{})), 200)
	check(d.Do(t, "GET", "/getLogs", logReq(done, "main", interlink.LogOpts{Tail: 1, Timestamps: true})), 200)
	check(d.Do(t, "POST", "/getLogs", logReq(done, "main", interlink.LogOpts{Follow: true})), 200)
	check(d.Do(t, "POST", "/getLogs", logReq(done, "main", interlink.LogOpts{Tail: 1, LimitBytes: 3})), 400)
	check(d.Do(t, "POST", "/getLogs", logReq(done, "nosuch", interlink.LogOpts{})), 404)
	check(d.Do(t, "POST", "/getLogs", logReq(done, "main", interlink.LogOpts{Previous: true})), 404)

	// Bad input on every interLink route.
	for _, path := range []string{"/create", "/status", "/delete", "/getLogs"} {
		check(d.Do(t, "POST", path, `{"cut`), 400)
	}
	check(d.Do(t, "POST", "/create", ""), 400)
	check(d.Do(t, "POST", "/create", `[]`), 400)
	check(d.Do(t, "POST", "/create", `{"pod": {"metadata": {"uid": 42}}}`), 400)
	check(d.Do(t, "POST", "/status", `{}`), 400)
	check(d.Do(t, "POST", "/status", `[{"metadata": {}}]`), 400)
	check(d.Do(t, "POST", "/delete", ""), 400)
	check(d.Do(t, "POST", "/getLogs", ""), 400)
	// A pod using a field the backend does not declare: 422 naming it.
	nfs := newPod("nfs", "true")
	nfs.Spec.Volumes = []v1.Volume{{Name: "remote", VolumeSource: v1.VolumeSource{NFS: &v1.NFSVolumeSource{Server: "nfs.example.org", Path: "/x"}}}}
	nfs.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "remote", MountPath: "/mnt"}}
	check(d.Do(t, "POST", "/create", interlink.RetrievedPodData{Pod: *nfs}), 422)
	// A pod naming a backend that is not configured: 400 naming the enabled ones.
	elsewhere := newPod("elsewhere", "true")
	elsewhere.Annotations = map[string]string{"dispatcher.interlink.eu/backend": "nosuch"}
	check(d.Do(t, "POST", "/create", interlink.RetrievedPodData{Pod: *elsewhere}), 400)
	// Routes and methods that do not exist.
	check(d.Do(t, "GET", "/create", nil), 405)
	check(d.Do(t, "PUT", "/delete", nil), 405)
	check(d.Do(t, "GET", "/nosuch", nil), 404)

	// Deletes: by POST and by DELETE, again, and of a pod never seen.
	check(d.Do(t, "POST", "/delete", running), 200)
	check(d.Do(t, "DELETE", "/delete", done), 200)
	check(d.Do(t, "POST", "/delete", done), 200)
	check(d.Do(t, "POST", "/delete", unknown), 200)
	check(d.Do(t, "POST", "/status", []*v1.Pod{done}), 200)

	for _, op := range []string{"POST /create", "GET /status", "POST /status", "POST /delete", "DELETE /delete",
		"GET /getLogs", "POST /getLogs", "GET /healthz", "GET /readyz", "GET /metrics"} {
		if !seen[op] {
			t.Errorf("the test never exercised %s", op)
		}
	}
}

// TestUndocumentedPathFails checks that only a 404 may answer an undocumented path, and only a 405 an
// undocumented method.
func TestUndocumentedPathFails(t *testing.T) {
	txt := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	if err := openapi.Validate("GET", "/nosuch", 200, txt, []byte("x\n")); err == nil {
		t.Error("a 200 on an undocumented path validated")
	}
	if err := openapi.Validate("GET", "/nosuch", 404, txt, []byte("/nosuch is not an endpoint\n")); err != nil {
		t.Errorf("the 404 of an undocumented path: %v", err)
	}
	if err := openapi.Validate("PUT", "/create", 200, txt, []byte("x\n")); err == nil {
		t.Error("a 200 to an undocumented method validated")
	}
	if err := openapi.Validate("PUT", "/create", 405, txt, []byte("/create does not accept PUT\n")); err != nil {
		t.Errorf("the 405 of an undocumented method: %v", err)
	}
}

// TestAdminAnswersValidate checks the admin API's answers.
func TestAdminAnswersValidate(t *testing.T) {
	d := dispatchertest.Start(t, "")
	p := newPod("admin", "echo hi")
	if a := d.Do(t, "POST", "/create", interlink.RetrievedPodData{Pod: *p}); a.Status != 200 {
		t.Fatalf("/create = %d %s", a.Status, a.Body)
	}
	waitFor(t, d, p, func(st interlink.PodStatus) bool { return st.Containers[0].State.Terminated != nil })
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/api/v1/backends", 200},
		{"/api/v1/pods", 200},
		{"/api/v1/pods?backend=process&namespace=" + p.Namespace, 200},
		{"/api/v1/pods?phase=Succeeded", 200},
		{"/api/v1/pods?phase=Sleeping", 400},
		{"/api/v1/pods?colour=red", 400},
		{"/api/v1/pods/" + string(p.UID), 200},
		{"/api/v1/pods/no-such-uid", 404},
	} {
		a := d.Do(t, "GET", c.path, nil)
		if a.Status != c.status {
			t.Errorf("GET %s = %d %s, want %d", c.path, a.Status, a.Body, c.status)
		}
		if err := openapi.Validate(a.Method, a.Path, a.Status, a.Header, a.Body); err != nil {
			t.Errorf("a real answer does not match the document: %v\nbody: %s", err, a.Body)
		}
	}
}

// TestWrongAnswersFail checks that the validator refuses answers the dispatcher must never give.
func TestWrongAnswersFail(t *testing.T) {
	js := http.Header{"Content-Type": {"application/json"}}
	txt := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	status := func(mutate func(m map[string]any)) []byte {
		st := map[string]any{"name": "p", "UID": "u1", "namespace": "ns", "initContainers": []any{},
			"containers": []any{map[string]any{"name": "main", "state": map[string]any{"running": map[string]any{"startedAt": "2026-12-02T04:00:00Z"}},
				"lastState": map[string]any{}, "ready": true, "restartCount": 0, "image": "busybox", "imageID": ""}}}
		mutate(st)
		b, _ := json.Marshal([]any{st})
		return b
	}
	good := status(func(map[string]any) {})
	if err := openapi.Validate("POST", "/status", 200, js, good); err != nil {
		t.Fatalf("the well-formed status used below does not validate: %v", err)
	}
	for _, c := range []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
	}{
		{"create without PodJID", "POST", "/create", 200, js, `{"PodUID": "u1"}`},
		{"create with an empty PodUID", "POST", "/create", 200, js, `{"PodUID": "", "PodJID": "x"}`},
		{"create answered as text", "POST", "/create", 200, txt, `{"PodUID": "u1", "PodJID": "x"}`},
		{"status without containers", "POST", "/status", 200, js, string(status(func(m map[string]any) { delete(m, "containers") }))},
		{"status with pod_uid spelled as interLink's OpenAPI file has it", "POST", "/status", 200, js,
			string(status(func(m map[string]any) { m["pod_uid"] = m["UID"]; delete(m, "UID") }))},
		{"a container both running and terminated", "POST", "/status", 200, js, string(status(func(m map[string]any) {
			m["containers"].([]any)[0].(map[string]any)["state"].(map[string]any)["terminated"] = map[string]any{"exitCode": 1}
		}))},
		{"a started time that is not a time", "POST", "/status", 200, js, string(status(func(m map[string]any) {
			m["containers"].([]any)[0].(map[string]any)["state"] = map[string]any{"running": map[string]any{"startedAt": "yesterday"}}
		}))},
		{"an empty status array", "POST", "/status", 200, js, `[]`},
		{"a ping with a zero-less bad quantity", "GET", "/status", 200, js, `{"status": "ok", "resources": {"cpu": "lots"}}`},
		{"a ping with a taint effect Kubernetes lacks", "GET", "/status", 200, js, `{"status": "ok", "taints": [{"key": "k", "effect": "Sometimes"}]}`},
		{"a ping with empty resources", "GET", "/status", 200, js, `{"status": "ok", "resources": {}}`},
		{"healthz saying something else", "GET", "/healthz", 200, txt, "fine\n"},
		{"readyz as text", "GET", "/readyz", 200, txt, "ok\n"},
		{"readyz with an unknown state", "GET", "/readyz", 503, js,
			`{"ready": false, "journal": "ok", "backends": [{"name": "b", "state": "asleep", "restarts": 0, "since": "2026-12-02T04:00:00Z"}]}`},
		{"an undocumented status", "POST", "/create", 418, txt, "teapot\n"},
		{"an empty error sentence", "POST", "/create", 400, txt, ""},
		{"a 401 without WWW-Authenticate", "POST", "/create", 401, txt, "a bearer token is needed\n"},
		{"an error as the wrong JSON", "GET", "/api/v1/pods", 400, js, `{"message": "bad phase"}`},
		{"a method the path lacks", "PUT", "/create", 200, js, `{}`},
		{"a pod summary without its backend", "GET", "/api/v1/pods", 200, js,
			`{"pods": [{"uid": "u", "namespace": "n", "name": "p", "remote_id": "r", "created": "2026-12-02T04:00:00Z", "phase": "", "ready": 0, "containers": 1, "restarts": 0}]}`},
		{"a backend in a state the admin API lacks", "GET", "/api/v1/backends", 200, js,
			`{"backends": [{"name": "b", "state": "sleepy", "pods": 0, "restarts": 0}]}`},
	} {
		if err := openapi.Validate(c.method, c.path, c.status, c.header, []byte(c.body)); err == nil {
			t.Errorf("%s: %s %s %d %s validated", c.name, c.method, c.path, c.status, c.body)
		} else {
			t.Logf("%s: refused: %v", c.name, err)
		}
	}
}

func newPod(name, script string) *v1.Pod {
	p := conformance.NewPod(name, conformance.ShellContainer("main", script))
	p.Spec.Containers[0].ImagePullPolicy = ""
	return p
}

// waitFor polls /status until the pod's status satisfies ok, validating each answer.
func waitFor(t *testing.T, d *dispatchertest.Dispatcher, p *v1.Pod, ok func(interlink.PodStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		a := d.Do(t, "POST", "/status", []*v1.Pod{p})
		if err := openapi.Validate(a.Method, a.Path, a.Status, a.Header, a.Body); err != nil {
			t.Errorf("a real answer does not match the document: %v\nbody: %s", err, a.Body)
		}
		var sts []interlink.PodStatus
		if err := json.Unmarshal(a.Body, &sts); err != nil || len(sts) != 1 {
			t.Fatalf("/status = %d %s", a.Status, a.Body)
		}
		if ok(sts[0]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s did not reach the state waited for within a minute: %s", p.Name, a.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAccessAnswersValidate checks the answers only the TCP listeners give: 401 without a bearer token (with
// its WWW-Authenticate), 403 to a client outside access.allow_networks, and the metrics listener's routes.
func TestAccessAnswersValidate(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	const token = "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(tokens, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	metrics := dispatchertest.FreeAddr(t)
	d := dispatchertest.StartTCP(t, "access:\n  token_file: "+tokens+"\nmetrics:\n  listen: "+metrics+"\n")
	check := func(a dispatchertest.Answer, want int) {
		t.Helper()
		if a.Status != want {
			t.Errorf("%s %s = %d %q, want %d", a.Method, a.Path, a.Status, a.Body, want)
		}
		if err := openapi.Validate(a.Method, a.Path, a.Status, a.Header, a.Body); err != nil {
			t.Errorf("a real answer does not match the document: %v\nbody: %s", err, a.Body)
		}
	}
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	check(d.DoAt(t, d.TCP, "POST", "/status", "[]", nil), 401)
	check(d.DoAt(t, d.TCP, "POST", "/status", "[]", http.Header{"Authorization": {"Bearer not-the-token-at-all"}}), 401)
	check(d.DoAt(t, d.TCP, "POST", "/status", "[]", bearer), 200)
	check(d.DoAt(t, d.TCP, "GET", "/healthz", nil, nil), 200) // access.open_paths
	check(d.DoAt(t, d.TCP, "GET", "/readyz", nil, nil), 401)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		check(d.DoAt(t, metrics, "GET", path, nil, bearer), 200)
	}

	// A client outside access.allow_networks: loopback is not in 192.0.2.0/24.
	far := dispatchertest.StartTCP(t, "access:\n  allow_networks: [192.0.2.0/24]\n")
	check(far.DoAt(t, far.TCP, "POST", "/create", `{}`, nil), 403)
	check(far.DoAt(t, far.TCP, "GET", "/readyz", nil, nil), 403)
}
