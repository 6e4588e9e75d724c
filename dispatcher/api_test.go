package dispatcher

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

func twoBackends(t *testing.T) *testEnv {
	cfg := testConfig(t, tempDir(t), "alpha", "beta")
	return startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha"), "beta": newMem("beta")})
}

func decodeCreateAnswer(t *testing.T, body string) interlink.CreateStruct {
	t.Helper()
	var cs interlink.CreateStruct
	if err := json.Unmarshal([]byte(body), &cs); err != nil {
		t.Fatalf("create answer %q is not a CreateStruct: %v", body, err)
	}
	return cs
}

func TestCreateObjectAndArray(t *testing.T) {
	e := twoBackends(t)
	// interLink 0.5.0 on: one object.
	code, body := e.do("POST", "/create", createBody(testPod("uid-obj", "obj")))
	if code != 200 {
		t.Fatalf("object create: %d %s", code, body)
	}
	cs := decodeCreateAnswer(t, body)
	if cs.PodUID != "uid-obj" || cs.PodJID != "alpha-1" {
		t.Fatalf("object create answered %+v", cs)
	}
	// interLink 0.4.x: an array holding one.
	code, body = e.do("POST", "/create", []interlink.RetrievedPodData{createBody(testPod("uid-arr", "arr"))})
	if code != 200 {
		t.Fatalf("array create: %d %s", code, body)
	}
	if cs := decodeCreateAnswer(t, body); cs.PodUID != "uid-arr" || cs.PodJID != "alpha-2" {
		t.Fatalf("array create answered %+v", cs)
	}
	// The raw keys are exactly PodUID and PodJID.
	var raw map[string]any
	json.Unmarshal([]byte(body), &raw)
	if _, ok := raw["PodUID"]; !ok || len(raw) != 2 {
		t.Fatalf("create answer keys: %v", raw)
	}
	// Journaled before the answer.
	ent, found, err := e.journal.Get("uid-arr")
	if err != nil || !found || ent.Backend != "alpha" || ent.RemoteID != "alpha-2" || ent.Name != "arr" || ent.Namespace != "default" {
		t.Fatalf("journal entry %+v found=%v err=%v", ent, found, err)
	}
}

func TestCreateIsIdempotent(t *testing.T) {
	e := twoBackends(t)
	p := testPod("uid-idem", "idem")
	_, b1 := e.do("POST", "/create", createBody(p))
	code, b2 := e.do("POST", "/create", createBody(p))
	if code != 200 || decodeCreateAnswer(t, b1).PodJID != decodeCreateAnswer(t, b2).PodJID {
		t.Fatalf("retry answered %d %s, first %s", code, b2, b1)
	}
	if n := e.mems["alpha"].creates; n != 1 {
		t.Fatalf("backend created the pod %d times", n)
	}
}

func TestCreateRoutesByAnnotation(t *testing.T) {
	e := twoBackends(t)
	p := testPod("uid-ann", "ann")
	p.Annotations = map[string]string{DefaultRoutingAnnotation: "beta"}
	code, body := e.do("POST", "/create", createBody(p))
	if code != 200 || decodeCreateAnswer(t, body).PodJID != "beta-1" {
		t.Fatalf("annotated create: %d %s", code, body)
	}
}

func TestCreateRefusals(t *testing.T) {
	e := twoBackends(t)
	e.cfg.Limits.MaxBodyBytes = 1 << 20
	unknown := testPod("uid-unknown", "u")
	unknown.Annotations = map[string]string{DefaultRoutingAnnotation: "gamma"}
	nfs := testPod("uid-nfs", "nfs")
	nfs.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{NFS: &v1.NFSVolumeSource{Server: "x", Path: "/"}}}}
	nfs.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
	noUID := testPod("", "nouid")
	big := testPod("uid-big", "big")
	big.Annotations = map[string]string{"pad": strings.Repeat("x", 11<<20)}

	for _, tc := range []struct {
		name string
		body any
		code int
		says []string
	}{
		{"malformed", `{"pod": {`, 400, []string{"cut short"}},
		{"not json", `hello`, 400, []string{"neither a JSON object nor an array"}},
		{"wrong type", `{"pod": {"metadata": {"uid": 42}}}`, 400, []string{"pod.metadata.uid", "JSON number", "a string"}},
		{"empty", ``, 400, []string{"empty"}},
		{"two pods", []interlink.RetrievedPodData{createBody(testPod("a", "a")), createBody(testPod("b", "b"))}, 400, []string{"exactly one"}},
		{"missing uid", createBody(noUID), 400, []string{"metadata.uid"}},
		{"unknown backend", createBody(unknown), 400, []string{`"gamma"`, "alpha, beta"}},
		{"unsupported volume", createBody(nfs), 422, []string{"volumeMounts[0]", `"nfs"`, `"alpha"`}},
		{"too large", createBody(big), 413, []string{"limits.max_body_bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.do("POST", "/create", tc.body)
			if code != tc.code {
				t.Fatalf("got %d %q, want %d", code, body, tc.code)
			}
			for _, s := range tc.says {
				if !strings.Contains(body, s) {
					t.Errorf("body %q does not say %q", body, s)
				}
			}
			if strings.Count(strings.TrimSpace(body), "\n") > 0 {
				t.Errorf("error body is more than one line: %q", body)
			}
		})
	}
	// Nothing changed on any refused request.
	if all, _ := e.journal.All(); len(all) != 0 {
		t.Fatalf("refused creates left journal entries: %+v", all)
	}
	if e.mems["alpha"].creates+e.mems["beta"].creates != 0 {
		t.Fatal("a refused create reached a backend")
	}
}

func TestCreateBackendErrorsMapToStatus(t *testing.T) {
	e := twoBackends(t)
	for _, tc := range []struct {
		err  error
		code int
	}{
		{backend.Invalid("spec.containers[0].image: no such image"), 422},
		{backend.Unavailable("the engine is down"), 503},
		{backend.Errorf(backend.KindInternal, "boom"), 500},
	} {
		e.mems["alpha"].createErr = tc.err
		code, body := e.do("POST", "/create", createBody(testPod("uid-err", "err")))
		if code != tc.code || !strings.Contains(body, tc.err.Error()) {
			t.Errorf("backend error %v answered %d %q, want %d", tc.err, code, body, tc.code)
		}
	}
	if _, found, _ := e.journal.Get("uid-err"); found {
		t.Fatal("a failed create was journaled")
	}
}

func TestCreateOverBudgetIsUndone(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Timeouts.Create = 100 * time.Millisecond
	m := newMem("alpha")
	m.createDelay = time.Minute // the backend honours the call's context: only the budget can end it early
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": m})
	start := time.Now()
	code, body := e.do("POST", "/create", createBody(testPod("uid-slow", "slow")))
	if code != 503 || !strings.Contains(body, "timeouts.create") {
		t.Fatalf("slow create answered %d %q", code, body)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("slow create took %s to answer", time.Since(start))
	}
	if len(m.deletes) != 1 {
		t.Fatalf("the timed-out create was not undone: %d deletes", len(m.deletes))
	}
}

func TestCreateUnavailableBackend(t *testing.T) {
	e := twoBackends(t)
	e.mems["beta"].kill()
	waitFor(t, func() bool { _, _, err := e.sup.Backend("beta"); return err != nil })
	p := testPod("uid-down", "down")
	p.Annotations = map[string]string{DefaultRoutingAnnotation: "beta"}
	code, body := e.do("POST", "/create", createBody(p))
	if code != 503 || !strings.Contains(body, `backend "beta" is unavailable`) {
		t.Fatalf("create on a down backend: %d %q", code, body)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStatusGetAndPostInRequestOrder(t *testing.T) {
	e := twoBackends(t)
	a := testPod("uid-a", "a", "one", "two")
	b := testPod("uid-b", "b")
	b.Annotations = map[string]string{DefaultRoutingAnnotation: "beta"}
	c := testPod("uid-c", "c")
	for _, p := range []*v1.Pod{a, b, c} {
		if code, body := e.do("POST", "/create", createBody(p)); code != 200 {
			t.Fatalf("create: %d %s", code, body)
		}
	}
	// Routing of c changes, but the journal keeps it on alpha.
	c.Annotations = map[string]string{DefaultRoutingAnnotation: "beta"}
	// A pod whose create was answered (the virtual kubelet keeps the answer's JobID) and that no backend knows.
	ghost := testPod("uid-ghost", "ghost")
	ghost.Annotations = map[string]string{annotationJobID: "alpha-99"}
	for _, method := range []string{"GET", "POST"} {
		code, body := e.do(method, "/status", []*v1.Pod{c, ghost, a, b})
		if code != 200 {
			t.Fatalf("%s /status: %d %s", method, code, body)
		}
		var st []interlink.PodStatus
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		if len(st) != 4 || st[0].PodUID != "uid-c" || st[1].PodUID != "uid-ghost" || st[2].PodUID != "uid-a" || st[3].PodUID != "uid-b" {
			t.Fatalf("statuses not in request order: %s", body)
		}
		if st[0].JobID != "alpha-2" || st[0].Containers[0].State.Running == nil {
			t.Fatalf("journaled pod routed by the journal: %+v", st[0])
		}
		if tm := st[1].Containers[0].State.Terminated; tm == nil || tm.Reason != "NotFound" || tm.ExitCode == 0 {
			t.Fatalf("unknown pod: %+v", st[1])
		}
		// One status per spec container, named, never an empty list.
		if len(st[2].Containers) != 2 || st[2].Containers[1].Name != "two" || st[2].Containers[1].State.Waiting == nil {
			t.Fatalf("pod a containers: %+v", st[2].Containers)
		}
		if st[3].JobID != "beta-1" {
			t.Fatalf("pod b: %+v", st[3])
		}
	}
	// One Status call per backend per request.
	if e.mems["alpha"].statusCalls != 2 || e.mems["beta"].statusCalls != 2 {
		t.Fatalf("status calls: alpha %d beta %d, want 2 each", e.mems["alpha"].statusCalls, e.mems["beta"].statusCalls)
	}
}

func TestStatusRefusals(t *testing.T) {
	e := twoBackends(t)
	for _, tc := range []struct {
		body string
		code int
		says string
	}{
		{`{"metadata": {}}`, 400, "JSON array"},
		{`[{"metadata": {"name": "x"}}]`, 400, "metadata.uid"},
		{`[{"metadata": {"uid": 7}}]`, 400, "JSON number"},
		{`[`, 400, "cut short"},
	} {
		code, body := e.do("GET", "/status", tc.body)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("status %q answered %d %q, want %d saying %q", tc.body, code, body, tc.code, tc.says)
		}
	}
}

func TestStatusSlowBackendDoesNotDelayOthers(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha", "beta")
	cfg.Timeouts.Status = 200 * time.Millisecond
	alpha, beta := newMem("alpha"), newMem("beta")
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": alpha, "beta": beta})
	a := testPod("uid-a", "a")
	b := testPod("uid-b", "b")
	b.Annotations = map[string]string{DefaultRoutingAnnotation: "beta"}
	e.do("POST", "/create", createBody(a))
	e.do("POST", "/create", createBody(b))
	// A first status records b's last known status.
	e.do("POST", "/status", []*v1.Pod{a, b})
	beta.statusDelay = time.Minute
	start := time.Now()
	code, body := e.do("POST", "/status", []*v1.Pod{a, b})
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("a slow backend delayed the answer by %s", d)
	}
	var st []interlink.PodStatus
	json.Unmarshal([]byte(body), &st)
	if code != 200 || len(st) != 2 || st[0].Containers[0].State.Running == nil {
		t.Fatalf("status with a slow backend: %d %s", code, body)
	}
	if st[1].Containers[0].State.Running == nil {
		t.Fatalf("the slow backend's pod did not get its last known status: %+v", st[1])
	}
}

func TestPing(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha", "beta", "gamma")
	alpha, beta, gamma := newMem("alpha"), newMem("beta"), newMem("gamma")
	gpus := int64(8)
	beta.capa = backend.Capacity{CPUMilli: ptr64(500), Pods: &gpus, Accelerators: map[string]int64{"nvidia.com/gpu": 4},
		Taints: []v1.Taint{{Key: "k", Value: "v", Effect: v1.TaintEffectNoSchedule}}}
	gamma.capa = backend.Capacity{CPUMilli: ptr64(100000), Taints: []v1.Taint{{Key: "gone", Effect: v1.TaintEffectNoSchedule}}}
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": alpha, "beta": beta, "gamma": gamma})
	gamma.kill() // a down backend's capacity is left out
	waitFor(t, func() bool { _, _, err := e.sup.Backend("gamma"); return err != nil })

	for _, tc := range []struct{ method, body string }{{"GET", "[]"}, {"POST", "[]"}, {"GET", ""}, {"GET", "null"}} {
		code, body := e.do(tc.method, "/status", tc.body)
		if code != 200 {
			t.Fatalf("ping %s %q: %d %s", tc.method, tc.body, code, body)
		}
		var pr interlink.PingResponse
		if err := json.Unmarshal([]byte(body), &pr); err != nil {
			t.Fatalf("ping answer %q: %v", body, err)
		}
		if pr.Status != "ok" || pr.Resources == nil {
			t.Fatalf("ping: %s", body)
		}
		r := pr.Resources
		if r.CPU != "2500m" || r.Memory != "4Gi" || r.Pods != "8" || len(r.Accelerators) != 1 || r.Accelerators[0].Available != "4" {
			t.Fatalf("ping resources: %+v", r)
		}
		if len(pr.Taints) != 1 || pr.Taints[0].Key != "k" {
			t.Fatalf("ping taints: %+v", pr.Taints)
		}
	}
	// A backend dropping its taint clears it on the node: the empty union is sent as [].
	beta.mu.Lock()
	beta.capa.Taints = nil
	beta.mu.Unlock()
	if _, body := e.do("GET", "/status", "[]"); !strings.Contains(body, `"taints":[]`) {
		t.Fatalf("ping without taints: %s", body)
	}
}

func ptr64(v int64) *int64 { return &v }

func TestSumCapacityLeavesUnknownOut(t *testing.T) {
	pr := sumCapacity([]*backend.Capacity{nil, {}})
	if pr.Resources != nil {
		t.Fatalf("unknown capacity reported: %+v", pr.Resources)
	}
	b, _ := json.Marshal(pr)
	if string(b) != `{"status":"ok"}` {
		t.Fatalf("ping of nothing known: %s", b)
	}
	m := resource.MustParse("1536Mi")
	pr = sumCapacity([]*backend.Capacity{{MemoryBytes: ptr64(m.Value())}, {MemoryBytes: ptr64(512 << 20)}})
	if pr.Resources.Memory != "2Gi" || pr.Resources.CPU != "" {
		t.Fatalf("memory sum: %+v", pr.Resources)
	}
}

func TestDeleteVariants(t *testing.T) {
	e := twoBackends(t)
	grace := int64(7)
	for _, method := range []string{"POST", "DELETE"} {
		p := testPod("uid-del-"+method, "del")
		p.Spec.TerminationGracePeriodSeconds = &grace
		e.do("POST", "/create", createBody(p))
		code, body := e.do(method, "/delete", p)
		if code != 200 || !strings.Contains(body, "deleted") {
			t.Fatalf("%s /delete: %d %q", method, code, body)
		}
		if _, found, _ := e.journal.Get(string(p.UID)); found {
			t.Fatalf("%s /delete left the journal entry", method)
		}
	}
	dels := e.mems["alpha"].deletes
	if len(dels) != 2 || dels[0].GracePeriod != 7*time.Second || dels[0].RemoteID != "alpha-1" {
		t.Fatalf("backend deletes: %+v", dels)
	}
	// An unknown pod deletes fine; so does one naming an unknown backend.
	code, _ := e.do("DELETE", "/delete", testPod("uid-never", "never"))
	ghost := testPod("uid-ghost", "ghost")
	ghost.Annotations = map[string]string{DefaultRoutingAnnotation: "nope"}
	code2, _ := e.do("POST", "/delete", ghost)
	if code != 200 || code2 != 200 {
		t.Fatalf("unknown pod delete: %d, unknown backend delete: %d", code, code2)
	}
	for body, want := range map[string]string{`[]`: "not a JSON object", `{"metadata":{}}`: "metadata.uid", `{`: "cut short"} {
		if code, msg := e.do("POST", "/delete", body); code != 400 || !strings.Contains(msg, want) {
			t.Errorf("delete %q: %d %q", body, code, msg)
		}
	}
}

func TestGracePeriod(t *testing.T) {
	e := twoBackends(t)
	huge, negative, five := int64(9223372036), int64(-5), int64(5)
	for _, c := range []struct {
		uid              string
		deletion, termin *int64
		want             time.Duration
	}{
		{"uid-g-default", nil, nil, 30 * time.Second},
		{"uid-g-spec", nil, &five, 5 * time.Second},
		{"uid-g-deletion", &five, &huge, 5 * time.Second},
		// 9223372036 s overflowed time.Duration: the delete deadline was in the past and the pod undeletable.
		{"uid-g-huge", &huge, nil, time.Hour},
		{"uid-g-huge-spec", nil, &huge, time.Hour},
		// Kubernetes reads a negative grace period as 1 s.
		{"uid-g-negative", &negative, nil, time.Second},
	} {
		p := testPod(c.uid, "grace")
		p.Spec.TerminationGracePeriodSeconds = c.termin
		if code, body := e.do("POST", "/create", createBody(p)); code != 200 {
			t.Fatalf("%s: create %d %q", c.uid, code, body)
		}
		p.DeletionGracePeriodSeconds = c.deletion
		if code, body := e.do("POST", "/delete", p); code != 200 {
			t.Fatalf("%s: delete %d %q", c.uid, code, body)
		}
		dels := e.mems["alpha"].deletes
		if got := dels[len(dels)-1]; string(got.Pod.UID) != c.uid || got.GracePeriod != c.want {
			t.Errorf("%s: the backend was asked to delete %s with grace %s, want %s", c.uid, got.Pod.UID, got.GracePeriod, c.want)
		}
	}
}

// TestCreateGraceHeld: the pod a backend is given carries grace periods within limits.max_grace_period, so
// that neither the backend nor the shim computes an overflowing deadline from them.
func TestCreateGraceHeld(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Limits.MaxGracePeriod = 10 * time.Minute
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	huge, negative := int64(1<<62), int64(-1)
	p := testPod("uid-grace-create", "grace")
	p.Spec.TerminationGracePeriodSeconds = &huge
	p.Spec.Containers[0].LivenessProbe = &v1.Probe{TerminationGracePeriodSeconds: &negative}
	// p is clamped directly below (the memBackend declares no probes, so it would refuse it); p2 goes through.
	p2 := testPod("uid-grace-create-2", "grace2")
	p2.Spec.TerminationGracePeriodSeconds = &huge
	if code, body := e.do("POST", "/create", createBody(p2)); code != 200 {
		t.Fatalf("create: %d %q", code, body)
	}
	got := e.mems["alpha"].pods["uid-grace-create-2"]
	if g := got.Spec.TerminationGracePeriodSeconds; g == nil || *g != 600 {
		t.Fatalf("the backend got terminationGracePeriodSeconds %v, want 600", g)
	}
	pc := p.DeepCopy()
	if changed := pod.ClampGracePeriods(pc, cfg.Limits.MaxGracePeriod); len(changed) != 2 ||
		*pc.Spec.TerminationGracePeriodSeconds != 600 || *pc.Spec.Containers[0].LivenessProbe.TerminationGracePeriodSeconds != 1 {
		t.Fatalf("ClampGracePeriods changed %v: %v, %v", changed, *pc.Spec.TerminationGracePeriodSeconds,
			*pc.Spec.Containers[0].LivenessProbe.TerminationGracePeriodSeconds)
	}
}

func TestLogs(t *testing.T) {
	e := twoBackends(t)
	e.mems["alpha"].logLines = []string{"hello", "world"}
	p := testPod("uid-log", "log")
	e.do("POST", "/create", createBody(p))
	req := interlink.LogStruct{Namespace: "default", PodUID: "uid-log", PodName: "log", ContainerName: "main"}
	for _, method := range []string{"GET", "POST"} {
		code, body := e.do(method, "/getLogs", req)
		if code != 200 || body != "hello\nworld\n" {
			t.Fatalf("%s /getLogs: %d %q", method, code, body)
		}
	}
	bad := func(mut func(*interlink.LogStruct)) interlink.LogStruct { r := req; mut(&r); return r }
	for _, tc := range []struct {
		req  any
		code int
		says string
	}{
		{bad(func(r *interlink.LogStruct) { r.Opts.Tail, r.Opts.LimitBytes = 1, 10 }), 400, "Tail and Bytes"},
		{bad(func(r *interlink.LogStruct) { r.Opts.SinceSeconds, r.Opts.SinceTime = 5, time.Now() }), 400, "SinceSeconds and SinceTime"},
		{bad(func(r *interlink.LogStruct) { r.PodUID = "" }), 400, "PodUID"},
		{`{"PodUID": 3}`, 400, "JSON number"},
		{`[]`, 400, "not a JSON object"},
		{bad(func(r *interlink.LogStruct) { r.PodUID = "uid-other" }), 404, "not known"},
	} {
		code, body := e.do("POST", "/getLogs", tc.req)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("getLogs %v: %d %q, want %d saying %q", tc.req, code, body, tc.code, tc.says)
		}
	}
}

func TestLogsFollowStreamsAndEndsWhenClientLeaves(t *testing.T) {
	e := twoBackends(t)
	e.mems["alpha"].logLines = []string{"first"}
	e.do("POST", "/create", createBody(testPod("uid-f", "f")))
	body, _ := json.Marshal(interlink.LogStruct{PodUID: "uid-f", PodName: "f", Namespace: "default", ContainerName: "main",
		Opts: interlink.LogOpts{Follow: true}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/getLogs", strings.NewReader(string(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	// Lines arrive one by one while the stream is open: each was flushed.
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for len(got) < 4 && sc.Scan() {
		got = append(got, sc.Text())
	}
	if len(got) != 4 || got[0] != "first" || got[1] != "follow 0" {
		t.Fatalf("followed lines: %q", got)
	}
	cancel()
	// The handler ends once the client left: the server can close without waiting on it.
	done := make(chan struct{})
	go func() { e.http.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the follow handler did not end after the client left")
	}
}

func TestUnknownRoute(t *testing.T) {
	e := twoBackends(t)
	if code, body := e.do("GET", "/nope", nil); code != 404 || !strings.Contains(body, "/create") {
		t.Fatalf("unknown route: %d %q", code, body)
	}
	if code, _ := e.do("GET", "/create", nil); code != 405 {
		t.Fatalf("GET /create: %d", code)
	}
}

func TestDeleteBackendErrors(t *testing.T) {
	obs := &recObserver{}
	e := startEnvWith(t, testConfig(t, tempDir(t), "alpha"), map[string]*memBackend{"alpha": newMem("alpha")}, obs)
	p := testPod("uid-de", "de")
	e.do("POST", "/create", createBody(p))
	if len(obs.routed) != 1 || obs.routed[0] != "default→alpha" {
		t.Fatalf("routing decisions observed: %v", obs.routed)
	}
	e.mems["alpha"].deleteErr = backend.Unavailable("the engine is restarting")
	if code, body := e.do("POST", "/delete", p); code != 503 || !strings.Contains(body, "restarting") {
		t.Fatalf("delete with the engine down: %d %q", code, body)
	}
	if _, found, _ := e.journal.Get("uid-de"); !found {
		t.Fatal("a failed delete removed the journal entry")
	}
	// A backend that no longer has the pod: deleted all the same.
	e.mems["alpha"].deleteErr = backend.NotFound("no pod uid-de")
	if code, body := e.do("POST", "/delete", p); code != 200 {
		t.Fatalf("delete of a pod the backend lost: %d %q", code, body)
	}
	if _, found, _ := e.journal.Get("uid-de"); found {
		t.Fatal("the journal entry of a deleted pod stayed")
	}
}

// /health answers as /healthz (interLink's plugin guide has images check /health); /openapi.json serves the
// document the answers are checked against.
func TestHealthAliasAndOpenAPIDocument(t *testing.T) {
	e := startEnv(t, testConfig(t, tempDir(t), "alpha"), map[string]*memBackend{"alpha": newMem("alpha")})
	if code, body := e.do(http.MethodGet, "/health", nil); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/health = %d %q, want 200 \"ok\\n\"", code, body)
	}
	code, body := e.do(http.MethodGet, "/openapi.json", nil)
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); code != http.StatusOK || err != nil {
		t.Fatalf("/openapi.json = %d, %v", code, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") || doc.Paths["/create"] == nil || doc.Paths["/health"] == nil {
		t.Fatalf("/openapi.json is not the API's OpenAPI 3.1 document: openapi %q, %d paths", doc.OpenAPI, len(doc.Paths))
	}
}
