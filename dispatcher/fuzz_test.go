package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// fuzzRoutes are the interLink routes FuzzAPI sends bodies to, picked by the fuzzer's route byte.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/create"}, {"POST", "/status"}, {"GET", "/status"}, {"POST", "/delete"}, {"DELETE", "/delete"},
	{"POST", "/getLogs"}, {"GET", "/getLogs"},
}

// FuzzAPI sends arbitrary bodies to every interLink route of a dispatcher over an in-process backend and
// checks what any answer must be: never a panic, never a 5xx but a backend's 503, a 4xx is one line of
// text, and a 2xx of /create or /status is the JSON interLink reads.
func FuzzAPI(f *testing.F) {
	seed := testPod("uid-fuzz-seed", "seed", "main", "side")
	grace := int64(9223372036)
	withGrace := testPod("uid-fuzz-grace", "grace")
	withGrace.DeletionGracePeriodSeconds = &grace
	for _, b := range []any{
		createBody(seed), []any{createBody(seed)}, createBody(withGrace), []any{seed}, []any{}, withGrace, seed,
		interlink.LogStruct{PodUID: "uid-fuzz-seed", Namespace: "default", PodName: "seed", ContainerName: "main", Opts: interlink.LogOpts{Tail: 1}},
		interlink.LogStruct{PodUID: "uid-fuzz-seed", ContainerName: "main", Opts: interlink.LogOpts{Follow: true}},
	} {
		raw, err := json.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		for i := range fuzzRoutes {
			f.Add(byte(i), raw)
		}
	}
	// The interLink community's pods, as interLink sends their creates (with the configMaps and secrets they
	// mount), to the create route and, as pods, to status and delete.
	for _, sc := range conformance.CommunityPods() {
		for _, cp := range sc.Pods {
			req := conformance.NewCreateRequest(cp.Pod, sc.Objects)
			create, err := json.Marshal(interlink.RetrievedPodData{Pod: *cp.Pod, Containers: req.Containers})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(byte(0), create)
			asPod, _ := json.Marshal(cp.Pod)
			f.Add(byte(1), append(append([]byte("["), asPod...), ']'))
			f.Add(byte(3), asPod)
		}
	}
	for _, raw := range []string{"", "null", "{", "[", `{"pod":{"metadata":{"uid":"u","name":"a\u0000b","namespace":"default"}}}`,
		`{"pod":{"metadata":{"uid":"../../x","name":"a","namespace":"default"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}`,
		`[{"metadata":{"uid":"u"}},null]`, `{"PodUID":"u","ContainerName":"c","Opts":{"Tail":-1}}`} {
		f.Add(byte(0), []byte(raw))
		f.Add(byte(1), []byte(raw))
		f.Add(byte(3), []byte(raw))
		f.Add(byte(5), []byte(raw))
	}

	cfg := testConfig(f, tempDir(f), "alpha")
	e := startEnv(f, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	h := e.srv.Handler()
	// A pod that exists, so that status, logs and delete seeds reach the backend too.
	e.do("POST", "/create", createBody(seed))

	f.Fuzz(func(t *testing.T, route byte, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		// A followed log runs until the client leaves: this one leaves after a moment.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, rt.method, rt.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		code, out := rec.Code, rec.Body.String()
		switch {
		case code == http.StatusServiceUnavailable:
			// A backend's answer (unavailable, or over its budget) is not the dispatcher's fault.
		case code >= 500:
			t.Fatalf("%s %s %q: %d %q", rt.method, rt.path, body, code, out)
		case code >= 400:
			if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") || strings.Count(out, "\n") != 1 ||
				!strings.HasSuffix(out, "\n") || len(out) < 10 {
				t.Fatalf("%s %s %q: %d answers %q, not one line of text", rt.method, rt.path, body, code, out)
			}
		case code >= 200 && code < 300:
			switch rt.path {
			case "/create":
				var cs interlink.CreateStruct
				if err := json.Unmarshal([]byte(out), &cs); err != nil || cs.PodUID == "" {
					t.Fatalf("create %q: 200 with %q", body, out)
				}
			case "/status":
				if !json.Valid([]byte(out)) {
					t.Fatalf("status %q: 200 with %q", body, out)
				}
			}
		default:
			t.Fatalf("%s %s %q: code %d", rt.method, rt.path, body, code)
		}
	})
}

// FuzzConfig loads arbitrary YAML as the config file: the answer is an error or a config that holds what
// every later step relies on, never a panic.
func FuzzConfig(f *testing.F) {
	for _, name := range []string{"../config.yaml"} {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"routing: {default: a}\nbackends: [{name: a, binary: /bin/true}]\n",
		"routing: {default: a}\nbackends: [{name: a, binary: /bin/true, enabled: false}, {name: b, binary: /bin/true}]\n",
		"listen: {tcp: '', unix: /tmp/x.sock}\nlimits: {max_body_bytes: -1, max_grace_period: 1ms}\nrouting: {default: a}\nbackends: [{name: a, binary: /bin/true}]\n",
		"timeouts: {create: 20}\n", "timeouts: {creat: 1s}\n", "backends: [{name: A_b}]\n", "- a\n- b\n", "{", "", "~", "a: &a [*a]\n",
		"routing: {default: a, rules: [{backend: a, match: {namespaces: [x], labels: {a: '*'}}}]}\nbackends: [{name: a, binary: /bin/true, config: {x: [1, {y: 2}]}}]\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "config.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(LoadOptions{Path: path})
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q: an empty error", data)
			}
			return
		}
		var enabled []string
		for _, b := range cfg.Backends {
			if b.IsEnabled() {
				enabled = append(enabled, b.Name)
			}
			if !filepath.IsAbs(b.Binary) {
				t.Fatalf("%q: backend %s has the relative binary %q", data, b.Name, b.Binary)
			}
		}
		switch {
		case !slices.Contains(enabled, cfg.Routing.Default):
			t.Fatalf("%q: routing.default %q is not an enabled backend of %v", data, cfg.Routing.Default, enabled)
		case cfg.Limits.MaxBodyBytes <= 0 || cfg.Limits.MaxGracePeriod < time.Second:
			t.Fatalf("%q: limits %+v", data, cfg.Limits)
		case cfg.Timeouts.Create <= 0 || cfg.Timeouts.Create >= 120*time.Second || cfg.Timeouts.Delete <= 0 || cfg.Timeouts.Status <= 0:
			t.Fatalf("%q: timeouts %+v", data, cfg.Timeouts)
		case cfg.Listen.TCP == "" && cfg.Listen.Unix == "":
			t.Fatalf("%q: nothing to listen on", data)
		case !filepath.IsAbs(cfg.DataDir):
			t.Fatalf("%q: data_dir %q is relative", data, cfg.DataDir)
		}
		// The backends' sections are handed to them as JSON: that must work for whatever the file held.
		if _, err := NewSupervisor(cfg, nil, quietLogger(t), nil); err != nil {
			t.Fatalf("%q: the backends' config cannot be handed over: %v", data, err)
		}
	})
}

// FuzzJournalRecord decodes arbitrary bytes as a journal record: an error or an entry that encodes and
// decodes to itself, never a panic.
func FuzzJournalRecord(f *testing.F) {
	st := interlink.PodStatus{PodName: "p", PodUID: "u", PodNamespace: "default", JobID: "42",
		Containers: []v1.ContainerStatus{{Name: "main", State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}}}
	for _, e := range []Entry{
		{UID: "u1", Backend: "docker", RemoteID: "c1", Namespace: "ns", Name: "p1", Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
		{UID: "u2", Backend: "slurm", Adopted: true, MissingSince: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), LastStatus: &st},
	} {
		data, err := json.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"uid":1}`))
	f.Add([]byte(`{"created":"not a time"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			return
		}
		once, err := json.Marshal(e)
		if err != nil {
			// A record the journal cannot write back (a time past year 9999) must not be accepted as read.
			t.Fatalf("%q decodes to an entry that cannot be encoded: %v", data, err)
		}
		e2, err := decodeEntry(once)
		if err != nil {
			t.Fatalf("%q: the re-encoded entry %q does not decode: %v", data, once, err)
		}
		twice, _ := json.Marshal(e2)
		if !bytes.Equal(once, twice) {
			t.Fatalf("%q: the entry changes through the journal:\n%s\n%s", data, once, twice)
		}
	})
}
