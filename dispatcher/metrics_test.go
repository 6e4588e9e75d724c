package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// samples is one scrape: each series (histograms as _count and _sum) keyed name{label="value",...} with
// the labels sorted, plus the raw text.
type samples struct {
	byKey map[string]float64
	text  string
}

func parseScrape(t testing.TB, text string) samples {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("the scrape is not valid Prometheus text: %v\n%s", err, text)
	}
	s := samples{byKey: map[string]float64{}, text: text}
	for name, f := range fams {
		for _, m := range f.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(ls)
			key := func(n string) string { return n + "{" + strings.Join(ls, ",") + "}" }
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.byKey[key(name)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.byKey[key(name)] = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				s.byKey[key(name)] = m.GetUntyped().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.byKey[key(name+"_count")] = float64(m.GetHistogram().GetSampleCount())
				s.byKey[key(name+"_sum")] = m.GetHistogram().GetSampleSum()
			case dto.MetricType_SUMMARY:
				s.byKey[key(name+"_count")] = float64(m.GetSummary().GetSampleCount())
			}
		}
	}
	return s
}

// get returns the value of the series name with exactly the labels given as "k=v" pairs, and whether
// it exists.
func (s samples) get(name string, labels ...string) (float64, bool) {
	var ls []string
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		ls = append(ls, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(ls)
	v, ok := s.byKey[name+"{"+strings.Join(ls, ",")+"}"]
	return v, ok
}

// must is get failing the test when the series is absent.
func (s samples) must(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.get(name, labels...)
	if !ok {
		t.Fatalf("series %s%v is not in the scrape:\n%s", name, labels, s.grep(name))
	}
	return v
}

// grep returns the scrape's lines that mention name, for failure messages.
func (s samples) grep(name string) string {
	var out []string
	for _, l := range strings.Split(s.text, "\n") {
		if strings.Contains(l, name) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return "(no line mentions " + name + ")"
	}
	return strings.Join(out, "\n")
}

// want fails the test unless the series has value v.
func (s samples) want(t testing.TB, v float64, name string, labels ...string) {
	t.Helper()
	if got := s.must(t, name, labels...); got != v {
		t.Fatalf("%s%v = %v, want %v:\n%s", name, labels, got, v, s.grep(name))
	}
}

func scrapeURL(t testing.TB, url string) samples {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET %s: content type %q", url, ct)
	}
	return parseScrape(t, string(body))
}

// promtool returns the path of promtool; without it the test is skipped, or fails under CI=true, where
// the lab installs it (Debian package prometheus).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (Debian package prometheus); the lab installs it")
		}
		t.Skip("promtool is not installed (Debian package prometheus)")
	}
	return p
}

// promtoolCheckMetrics runs `promtool check metrics` on a scrape; it lints names, units, help and types.
func promtoolCheckMetrics(t *testing.T, text string) {
	t.Helper()
	cmd := exec.Command(promtool(t), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func metricsEnv(t *testing.T, names ...string) (*testEnv, *Metrics) {
	t.Helper()
	cfg := testConfig(t, tempDir(t), names...)
	mems := map[string]*memBackend{}
	for _, n := range names {
		mems[n] = newMem(n)
	}
	m := NewMetrics(cfg, BuildInfo{Version: "v9.9.9", Commit: "abc", GoVersion: "go1.x"}, quietLogger(t))
	return startEnvWith(t, cfg, mems, m), m
}

func (e *testEnv) scrape() samples {
	e.t.Helper()
	return scrapeURL(e.t, e.http.URL+"/metrics")
}

// Requests, creates by outcome, routing, pods by phase, create-to-running, RPC durations and errors,
// capacity and deletes move as the dispatcher works, against the in-process backends.
func TestMetricsFollowThePods(t *testing.T) {
	e, _ := metricsEnv(t, "alpha", "beta")
	s := e.scrape()
	s.want(t, 1, "interlink_dispatcher_build_info", "version=v9.9.9", "commit=abc", "goversion=go1.x")
	s.want(t, 1, "interlink_dispatcher_backend_up", "backend=alpha")
	s.want(t, 1, "interlink_dispatcher_backend_up", "backend=beta")
	s.want(t, 0, "interlink_dispatcher_backend_restarts_total", "backend=alpha")
	s.want(t, 0, "interlink_dispatcher_pod_creates_total", "backend=alpha", "outcome=ok")
	s.want(t, 0, "interlink_dispatcher_pods", "backend=alpha", "phase=Running")
	s.want(t, 0, "interlink_dispatcher_journal_pods")
	s.must(t, "go_goroutines")
	s.must(t, "process_resident_memory_bytes")

	p := testPod("uid-m1", "web")
	if code, body := e.do("POST", "/create", createBody(p)); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, body := e.do("POST", "/create", createBody(p)); code != 200 { // interLink's retry
		t.Fatalf("create again: %d %s", code, body)
	}
	stray := testPod("uid-m2", "stray")
	stray.Annotations = map[string]string{DefaultRoutingAnnotation: "no-such-backend"}
	if code, _ := e.do("POST", "/create", createBody(stray)); code != 400 {
		t.Fatalf("create on an unknown backend: %d", code)
	}
	e.mems["beta"].mu.Lock()
	e.mems["beta"].createErr = backend.Invalid("spec.containers[0].image: refused by the test")
	e.mems["beta"].mu.Unlock()
	refused := testPod("uid-m3", "refused")
	refused.Annotations = map[string]string{DefaultRoutingAnnotation: "beta"}
	if code, _ := e.do("POST", "/create", createBody(refused)); code != 422 {
		t.Fatalf("create refused by the backend: %d", code)
	}

	s = e.scrape()
	s.want(t, 1, "interlink_dispatcher_pod_creates_total", "backend=alpha", "outcome=ok")
	s.want(t, 1, "interlink_dispatcher_pod_creates_total", "backend=alpha", "outcome=duplicate")
	s.want(t, 1, "interlink_dispatcher_pod_creates_total", "backend=none", "outcome=rejected")
	s.want(t, 1, "interlink_dispatcher_pod_creates_total", "backend=beta", "outcome=rejected")
	s.want(t, 1, "interlink_dispatcher_routing_decisions_total", "rule=default", "backend=alpha")
	s.want(t, 1, "interlink_dispatcher_routing_decisions_total", "rule=annotation", "backend=beta")
	s.want(t, 1, "interlink_dispatcher_backend_rpc_errors_total", "backend=beta", "method=Create", "kind=invalid")
	s.want(t, 1, "interlink_dispatcher_backend_rpc_duration_seconds_count", "backend=alpha", "method=Create")
	s.want(t, 2, "interlink_dispatcher_http_requests_total", "route=/create", "method=POST", "code=200")
	s.want(t, 1, "interlink_dispatcher_http_requests_total", "route=/create", "method=POST", "code=422")
	s.want(t, 4, "interlink_dispatcher_http_request_size_bytes_count", "route=/create")
	if sum := s.must(t, "interlink_dispatcher_http_request_size_bytes_sum", "route=/create"); sum < 4*50 {
		t.Fatalf("request bytes %v for 4 creates with a pod each", sum)
	}
	s.want(t, 1, "interlink_dispatcher_http_requests_in_flight") // the scrape itself
	s.want(t, 1, "interlink_dispatcher_journal_pods")
	s.want(t, 1, "interlink_dispatcher_pods", "backend=alpha", "phase=Pending") // no status seen yet
	if n := s.must(t, "interlink_dispatcher_journal_write_duration_seconds_count"); n < 1 {
		t.Fatalf("journal writes %v after a create", n)
	}
	if strings.Contains(s.text, "no-such-backend") || strings.Contains(s.text, "uid-m") || strings.Contains(s.text, "web") {
		t.Fatalf("a pod's annotation, UID or name leaked into a label:\n%s", s.text)
	}

	// The in-process backend reports the pod Running: seen once, observed once.
	for range 3 {
		if st := e.podStatus(p); st.Containers[0].State.Running == nil {
			t.Fatalf("status: %+v", st)
		}
	}
	s = e.scrape()
	s.want(t, 1, "interlink_dispatcher_pods", "backend=alpha", "phase=Running")
	s.want(t, 0, "interlink_dispatcher_pods", "backend=alpha", "phase=Pending")
	s.want(t, 1, "interlink_dispatcher_pod_create_to_running_seconds_count", "backend=alpha")
	s.want(t, 3, "interlink_dispatcher_backend_rpc_duration_seconds_count", "backend=alpha", "method=Status")

	// The ping reports capacity; the in-process backends say 2 cores and 4 GiB each.
	if code, body := e.do("POST", "/status", "[]"); code != 200 {
		t.Fatalf("ping: %d %s", code, body)
	}
	s = e.scrape()
	s.want(t, 2, "interlink_dispatcher_backend_capacity_cpu_cores", "backend=alpha")
	s.want(t, 4<<30, "interlink_dispatcher_backend_capacity_memory_bytes", "backend=beta")
	if _, ok := s.get("interlink_dispatcher_backend_capacity_pods", "backend=alpha"); ok {
		t.Fatal("a capacity the backend did not report is exposed")
	}

	if code, body := e.do("POST", "/delete", p); code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, _ := e.do("POST", "/delete", "{"); code != 400 {
		t.Fatalf("bad delete: %d", code)
	}
	s = e.scrape()
	s.want(t, 1, "interlink_dispatcher_pod_deletes_total", "backend=alpha", "outcome=ok")
	s.want(t, 1, "interlink_dispatcher_pod_deletes_total", "backend=none", "outcome=rejected")
	s.want(t, 0, "interlink_dispatcher_pods", "backend=alpha", "phase=Running")
	s.want(t, 0, "interlink_dispatcher_journal_pods")
	if n := s.must(t, "interlink_dispatcher_reconciliations_total", "backend=alpha", "outcome=ok"); n < 1 {
		t.Fatalf("reconciliations of alpha: %v", n)
	}
	s.want(t, 0, "interlink_dispatcher_reconciled_pods_total", "backend=alpha", "result=adopted")

	promtoolCheckMetrics(t, s.text)
}

// A backend that exits: up drops to 0, restarts rise, its capacity disappears and /readyz answers 503
// naming it, until it is back.
func TestMetricsBackendDownAndBack(t *testing.T) {
	e, _ := metricsEnv(t, "alpha", "beta")
	if code, body := e.do("GET", "/readyz", nil); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("readyz: %d %s", code, body)
	}
	e.do("POST", "/status", "[]")
	e.scrape().must(t, "interlink_dispatcher_backend_capacity_cpu_cores", "backend=beta")

	e.mems["beta"].kill()
	waitFor(t, func() bool {
		v, _ := e.scrape().get("interlink_dispatcher_backend_up", "backend=beta")
		return v == 0
	})
	waitFor(t, func() bool {
		v, _ := e.scrape().get("interlink_dispatcher_backend_restarts_total", "backend=beta")
		return v >= 1
	})
	s := e.scrape()
	s.want(t, 1, "interlink_dispatcher_backend_up", "backend=alpha")
	if _, ok := s.get("interlink_dispatcher_backend_capacity_cpu_cores", "backend=beta"); ok {
		t.Fatal("a down backend's capacity is still exposed")
	}
	if ts := s.must(t, "interlink_dispatcher_backend_last_restart_timestamp_seconds", "backend=beta"); ts < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("last restart at %v", ts)
	}
	code, body := e.do("GET", "/readyz", nil)
	var rd Readiness
	if err := json.Unmarshal([]byte(body), &rd); code != 503 || err != nil {
		t.Fatalf("readyz with beta down: %d %s", code, body)
	}
	if rd.Ready || len(rd.Backends) != 2 || rd.Backends[1].Name != "beta" || rd.Backends[1].State != "down" ||
		!strings.Contains(rd.Backends[1].LastError, "killed by the test") || rd.Backends[0].State != "up" || rd.Backends[0].Version != "test" ||
		len(rd.Reasons) != 1 || !strings.Contains(rd.Reasons[0], `"beta"`) || rd.Journal != "ok" {
		t.Fatalf("readyz with beta down: %s", body)
	}
	p := testPod("uid-down", "down")
	p.Annotations = map[string]string{DefaultRoutingAnnotation: "beta"}
	if code, _ := e.do("POST", "/create", createBody(p)); code != 503 {
		t.Fatalf("create on a down backend: %d", code)
	}
	e.scrape().want(t, 1, "interlink_dispatcher_pod_creates_total", "backend=beta", "outcome=unavailable")
	if code, body := e.do("GET", "/healthz", nil); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}

	e.mems["beta"].revive()
	waitFor(t, func() bool {
		v, _ := e.scrape().get("interlink_dispatcher_backend_up", "backend=beta")
		return v == 1
	})
	if code, body := e.do("GET", "/readyz", nil); code != 200 || !strings.Contains(body, `"restarts":`) {
		t.Fatalf("readyz after recovery: %d %s", code, body)
	}
	// A closed journal makes the dispatcher unready.
	e.journal.Close()
	if code, body := e.do("GET", "/readyz", nil); code != 503 || !strings.Contains(body, "journal") {
		t.Fatalf("readyz with the journal closed: %d %s", code, body)
	}
}

func counterFamily(name, help string, series ...float64) *dto.MetricFamily {
	f := &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: dto.MetricType_COUNTER.Enum()}
	for i, v := range series {
		f.Metric = append(f.Metric, &dto.Metric{
			Label:   []*dto.LabelPair{{Name: proto.String("call"), Value: proto.String(fmt.Sprint("c", i))}},
			Counter: &dto.Counter{Value: proto.Float64(v)},
		})
	}
	return f
}

// The backends' own series are exposed under interlink_backend_ with a backend label; same-named series of
// two backends share a family, a type conflict leaves the later one out, and a backend that fails or is
// down contributes nothing without failing the scrape.
func TestMetricsGatherBackends(t *testing.T) {
	e, _ := metricsEnv(t, "alpha", "beta", "gamma")
	set := func(name string, err error, fams ...*dto.MetricFamily) {
		m := e.mems[name]
		m.mu.Lock()
		m.families, m.metricsErr = fams, err
		m.mu.Unlock()
	}
	set("alpha", nil,
		counterFamily("interlink_dispatcher_docker_engine_request_errors_total", "Docker errors.", 3, 4),
		counterFamily("shared_calls_total", "Calls.", 1),
		// A series claiming another backend's name gets its own.
		&dto.MetricFamily{Name: proto.String("interlink_backend_queue_depth"), Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{
			Label: []*dto.LabelPair{{Name: proto.String("backend"), Value: proto.String("beta")}}, Gauge: &dto.Gauge{Value: proto.Float64(7)}}}},
	)
	set("beta", nil,
		counterFamily("shared_calls_total", "Calls, said differently.", 5),
		counterFamily("slurm_squeue_invocations_total", "squeue runs.", 9),
	)
	set("gamma", errors.New("metrics broke"), counterFamily("never_seen_total", "x", 1))

	s := e.scrape()
	s.want(t, 3, "interlink_backend_docker_engine_request_errors_total", "backend=alpha", "call=c0")
	s.want(t, 4, "interlink_backend_docker_engine_request_errors_total", "backend=alpha", "call=c1")
	s.want(t, 1, "interlink_backend_shared_calls_total", "backend=alpha", "call=c0")
	s.want(t, 5, "interlink_backend_shared_calls_total", "backend=beta", "call=c0")
	s.want(t, 9, "interlink_backend_slurm_squeue_invocations_total", "backend=beta", "call=c0")
	s.want(t, 7, "interlink_backend_queue_depth", "backend=alpha")
	if strings.Contains(s.text, "never_seen") {
		t.Fatal("a failing backend's series were exposed")
	}
	promtoolCheckMetrics(t, s.text)
	// The Metrics calls of a scrape are counted after the dispatcher's own series were taken: in the next.
	s = e.scrape()
	s.want(t, 1, "interlink_dispatcher_backend_rpc_duration_seconds_count", "backend=beta", "method=Metrics")
	s.want(t, 1, "interlink_dispatcher_backend_rpc_errors_total", "backend=gamma", "method=Metrics", "kind=internal")

	// A type conflict: beta's gauge named like alpha's counter is left out, alpha's stays.
	set("beta", nil, &dto.MetricFamily{Name: proto.String("shared_calls_total"), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}}})
	s = e.scrape()
	s.want(t, 1, "interlink_backend_shared_calls_total", "backend=alpha", "call=c0")
	if _, ok := s.get("interlink_backend_shared_calls_total", "backend=beta"); ok {
		t.Fatal("a series of a conflicting type was merged")
	}

	// A backend that is down contributes nothing; the scrape still answers.
	e.mems["alpha"].kill()
	waitFor(t, func() bool {
		v, _ := e.scrape().get("interlink_dispatcher_backend_up", "backend=alpha")
		return v == 0
	})
	if s := e.scrape(); strings.Contains(s.text, `interlink_backend_docker_engine_request_errors_total{`) {
		t.Fatal("a down backend's series were exposed")
	}
}

func TestBackendMetricName(t *testing.T) {
	for in, want := range map[string]string{
		"interlink_backend_x_total":                       "interlink_backend_x_total",
		"interlink_dispatcher_docker_engine_errors_total": "interlink_backend_docker_engine_errors_total",
		"slurm_squeue_duration_seconds":                   "interlink_backend_slurm_squeue_duration_seconds",
		"interlink_dispatcher_http_requests_total":        "interlink_backend_http_requests_total",
		"go_goroutines":                                   "interlink_backend_go_goroutines",
	} {
		if got := BackendMetricName(in); got != want {
			t.Errorf("BackendMetricName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorKindLabel(t *testing.T) {
	for err, want := range map[error]string{
		backend.Invalid("x"):                     "invalid",
		backend.NotFound("x"):                    "not_found",
		backend.Unavailable("x"):                 "unavailable",
		errors.New("x"):                          "internal",
		fmt.Errorf("call: %w", context.Canceled): "canceled",
		&backend.Error{Kind: backend.KindUnavailable, Msg: "x", Err: context.DeadlineExceeded}: "timeout",
	} {
		if got := errorKind(err); got != want {
			t.Errorf("errorKind(%v) = %q, want %q", err, got, want)
		}
	}
}

// The separate metrics listener serves /metrics, /healthz and /readyz, and never the interLink API.
func TestServeOps(t *testing.T) {
	e, _ := metricsEnv(t, "alpha")
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- e.srv.ServeOps(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	base := "http://" + <-addrc
	s := scrapeURL(t, base+"/metrics")
	s.want(t, 1, "interlink_dispatcher_backend_up", "backend=alpha")
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/create": 404, "/status": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s on the metrics listener: %d, want %d", path, resp.StatusCode, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// checkPodLogLines fails the test unless every JSON log line naming a pod UID also names its namespace and
// name, and no line has a key twice; it returns how many lines named a pod.
func checkPodLogLines(t *testing.T, lines []string) int {
	t.Helper()
	n := 0
	for _, l := range lines {
		if l == "" {
			continue
		}
		if dup := duplicateKey(l); dup != "" {
			t.Errorf("log line has the key %q twice: %s", dup, l)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if uid, ok := rec["pod_uid"]; ok && uid != "" {
			n++
			if rec["namespace"] == nil || rec["namespace"] == "" || rec["name"] == nil || rec["name"] == "" {
				t.Errorf("log line about pod %v lacks its namespace or name: %s", uid, l)
			}
		}
	}
	return n
}

// duplicateKey returns a top-level key a JSON object repeats, "" if none.
func duplicateKey(line string) string {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// Every log line about a pod carries its UID, namespace and name, in the JSON format the command uses
// for log.format json.
func TestPodLogLinesNameThePod(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	j, err := OpenJournal(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	buf := &labtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mem := newMem("alpha")
	sup, _ := NewSupervisor(cfg, func(context.Context, LaunchSpec) (Instance, error) { return mem.launch() }, log, nil)
	srv, err := NewServer(Options{Config: cfg, Journal: j, Backends: sup, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	sup.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sup.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, cfg: cfg, journal: j, sup: sup, srv: srv, http: httptest.NewServer(srv.Handler())}
	t.Cleanup(e.close)

	p := testPod("uid-log-1", "logged")
	e.do("POST", "/create", createBody(p))
	e.do("GET", "/status", []*v1.Pod{p})
	e.do("POST", "/getLogs", map[string]any{"PodUID": "uid-log-1", "Namespace": "default", "PodName": "logged", "ContainerName": "main"})
	mem.mu.Lock()
	mem.deleteErr = backend.Unavailable("engine away")
	mem.mu.Unlock()
	e.do("POST", "/delete", p)
	mem.mu.Lock()
	mem.deleteErr = nil
	mem.mu.Unlock()
	e.do("POST", "/delete", p)
	if n := checkPodLogLines(t, buf.Lines()); n < 5 {
		t.Fatalf("only %d log lines name a pod:\n%s", n, strings.Join(buf.Lines(), "\n"))
	}
}

// The alerting rules are valid, fire as their unit tests say, and, like the dashboard, use only series the
// dispatcher exposes; the scrape config example is valid.
func TestAlertRules(t *testing.T) {
	dir := filepath.Join("..", "deploy", "observability")
	rules := filepath.Join(dir, "alerts.yaml")
	for _, args := range [][]string{
		{"check", "rules", rules},
		{"test", "rules", filepath.Join(dir, "alerts_test.yaml")},
		{"check", "config", filepath.Join(dir, "prometheus-scrape.yaml")},
	} {
		if out, err := exec.Command(promtool(t), args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	_, m := metricsEnv(t, "alpha")
	known := map[string]bool{}
	ch := make(chan *prometheus.Desc)
	go func() { m.Describe(ch); close(ch) }()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if sm := fq.FindStringSubmatch(d.String()); sm != nil {
			known[sm[1]] = true
		}
	}
	for _, f := range []string{rules, filepath.Join(dir, "grafana-dashboard.json")} {
		checkMetricNamesExist(t, f, known)
	}
}

// checkMetricNamesExist fails the test for every interlink_dispatcher_* name the file uses that the
// dispatcher does not expose (histogram suffixes allowed).
func checkMetricNamesExist(t *testing.T, file string, known map[string]bool) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`interlink_dispatcher_[a-z0-9_]+`).FindAllString(string(data), -1)
	if len(used) == 0 {
		t.Fatalf("%s uses no dispatcher series", file)
	}
	for _, n := range used {
		base := n
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(n, suf); ok && known[b] {
				base = b
			}
		}
		if !known[base] {
			t.Errorf("%s uses %s, which the dispatcher does not expose", file, n)
		}
	}
}

// metrics.listen and metrics.backend_timeout load from the file and the environment, and are checked.
func TestMetricsConfig(t *testing.T) {
	path := writeConfig(t, goodConfig+"metrics: {backend_timeout: 3s}\n")
	cfg, err := LoadConfig(LoadOptions{Path: path, Environ: []string{"INTERLINK_DISPATCHER_METRICS_LISTEN=127.0.0.1:9464"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metrics.Listen != "127.0.0.1:9464" || cfg.Metrics.BackendTimeout != 3*time.Second {
		t.Fatalf("metrics config: %+v", cfg.Metrics)
	}
	if d := DefaultConfig().Metrics; d.Listen != "" || d.BackendTimeout != 2*time.Second {
		t.Fatalf("metrics defaults: %+v", d)
	}
	for yaml, want := range map[string]string{
		"metrics: {backend_timeout: 0s}\n":        "config key metrics.backend_timeout: must be a positive duration",
		"metrics: {listen: \"127.0.0.1:4100\"}\n": "config key metrics.listen: 127.0.0.1:4100 is listen.tcp already",
		"metrics: {listn: \"127.0.0.1:9464\"}\n":  "config key metrics.listn is not a known key",
	} {
		_, err := LoadConfig(LoadOptions{Path: writeConfig(t, goodConfig+yaml), Environ: []string{}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", yaml, err, want)
		}
	}
}
