package backend_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// testBackend builds internal/testbackend into a temporary directory once per test binary run.
var testBackend struct {
	once sync.Once
	path string
	err  error
}

func buildTestBackend(t *testing.T) string {
	t.Helper()
	testBackend.once.Do(func() {
		dir, err := os.MkdirTemp("", "testbackend-")
		if err != nil {
			testBackend.err = err
			return
		}
		testBackend.path = filepath.Join(dir, "testbackend")
		cmd := exec.Command("go", "build", "-o", testBackend.path, "./internal/testbackend")
		if out, err := cmd.CombinedOutput(); err != nil {
			testBackend.err = errors.New(string(out))
		}
	})
	if testBackend.err != nil {
		t.Fatalf("building the test backend: %v", testBackend.err)
	}
	return testBackend.path
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	code := m.Run()
	if testBackend.path != "" {
		os.RemoveAll(filepath.Dir(testBackend.path))
	}
	os.Exit(code)
}

// recorder is a slog handler keeping every record with its attributes flattened, so that tests can look
// for the lines a backend wrote on its stderr.
type recorder struct {
	mu    *sync.Mutex
	recs  *[]record
	attrs []slog.Attr
}

type record struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

func newRecorder() *recorder { return &recorder{mu: &sync.Mutex{}, recs: &[]record{}} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	attrs := map[string]any{}
	for _, a := range r.attrs {
		attrs[a.Key] = a.Value.Any()
	}
	rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.Any(); return true })
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.recs = append(*r.recs, record{level: rec.Level, msg: rec.Message, attrs: attrs})
	return nil
}
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(append([]slog.Attr{}, r.attrs...), as...)
	return &c
}
func (r *recorder) WithGroup(string) slog.Handler { return r }

// find waits up to 5 s for a record with message msg.
func (r *recorder) find(t *testing.T, msg string) record {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, rec := range *r.recs {
			if rec.msg == msg {
				r.mu.Unlock()
				return rec
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log record %q was re-emitted", msg)
	return record{}
}

func launch(t *testing.T, cfg backend.LaunchConfig) *backend.Process {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "mem"
	}
	if cfg.Path == "" {
		cfg.Path = buildTestBackend(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(newRecorder())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := backend.Launch(ctx, cfg)
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

func testPod(uid string, annotations map[string]string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-" + uid, Namespace: "ns1", UID: types.UID(uid),
			Annotations: annotations, Labels: map[string]string{"app": "x"}},
		Spec: v1.PodSpec{
			InitContainers: []v1.Container{{Name: "init", Image: "busybox:latest"}},
			Containers: []v1.Container{
				{Name: "main", Image: "busybox:latest", Command: []string{"sh", "-c", "echo hi"}},
				{Name: "side", Image: "busybox:latest"},
			},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	rec := newRecorder()
	p := launch(t, backend.LaunchConfig{Env: backend.Env{Instance: "i1", Config: json.RawMessage(`{"logLines": 3}`)},
		Logger: slog.New(rec)})
	ctx := context.Background()

	d := p.Description()
	if d.Name != "memory" || d.Version != "0.0.1-test" || d.ProtocolVersion != backend.ProtocolVersion ||
		d.Engine != "memory" || strings.Join(d.Capabilities.VolumeKinds, ",") != "configMap,emptyDir" ||
		strings.Join(d.Capabilities.Features, ",") != "initContainers,multipleContainers" ||
		strings.Join(d.Capabilities.ExtendedResources, ",") != "nvidia.com/gpu" {
		t.Errorf("Description = %+v", d)
	}
	if p.Name() != "mem" || p.PID() <= 0 {
		t.Errorf("Name, PID = %q, %d", p.Name(), p.PID())
	}

	c, err := p.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.CPUMilli == nil || *c.CPUMilli != 4000 || c.MemoryBytes == nil || *c.MemoryBytes != 8<<30 ||
		c.Pods != nil || c.Accelerators["nvidia.com/gpu"] != 2 || len(c.Taints) != 1 ||
		c.Taints[0].Key != "example.com/maintenance" || c.Taints[0].Effect != v1.TaintEffectNoSchedule ||
		c.Taints[0].TimeAdded == nil || c.Taints[0].TimeAdded.Year() != 2026 {
		t.Errorf("Capacity = %+v", c)
	}

	pod := testPod("uid-1", map[string]string{"note": "ünïcode ✓"})
	// Over gRPC's default 4 MiB message limit, under the dispatcher's 10 MiB body limit.
	big := strings.Repeat("0123456789abcdef", 6<<20/16)
	req := backend.CreateRequest{Pod: pod, JobScript: "#!/bin/sh\n", Containers: []interlink.RetrievedContainer{
		{Name: "main", ConfigMaps: []v1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": big}}},
			Secrets: []v1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Data: map[string][]byte{"k": {0, 1, 2}}}}},
	}}
	res, err := p.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	created := rec.find(t, "pod created")
	if created.attrs["configMapBytes"] != float64(len(big)) || created.attrs["note"] != "ünïcode ✓" ||
		created.attrs["jobScript"] != "#!/bin/sh\n" || created.attrs["containers"] != 1.0 {
		t.Errorf("the backend received the create request as %v", created.attrs)
	}
	again, err := p.Create(ctx, req)
	if err != nil || again.RemoteID != res.RemoteID || res.RemoteID == "" {
		t.Errorf("second Create = %q, %v; first gave %q", again.RemoteID, err, res.RemoteID)
	}

	unknown := testPod("uid-unknown", nil)
	sts, err := p.Status(ctx, []*v1.Pod{unknown, pod})
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 2 || sts[0].PodUID != "uid-unknown" || sts[1].PodUID != "uid-1" || sts[1].JobID != res.RemoteID {
		t.Fatalf("Status = %+v", sts)
	}
	if len(sts[0].Containers) != 2 || sts[0].Containers[0].State.Terminated == nil ||
		sts[0].Containers[0].State.Terminated.Reason != "NotFound" {
		t.Errorf("status of an unknown pod = %+v", sts[0])
	}
	if len(sts[1].Containers) != 2 || sts[1].Containers[1].Name != "side" || sts[1].Containers[1].State.Running == nil ||
		sts[1].Containers[1].State.Running.StartedAt.IsZero() || len(sts[1].InitContainers) != 1 {
		t.Errorf("status of a running pod = %+v", sts[1])
	}
	if sts, err := p.Status(ctx, nil); err != nil || len(sts) != 0 {
		t.Errorf("Status of no pods = %v, %v", sts, err)
	}

	recs, err := p.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].UID != "uid-1" || recs[0].Namespace != "ns1" || recs[0].Name != "pod-uid-1" ||
		recs[0].RemoteID != res.RemoteID || recs[0].Phase != v1.PodRunning ||
		time.Since(recs[0].Created) > time.Minute {
		t.Errorf("List = %+v", recs)
	}

	var buf bytes.Buffer
	lr := backend.LogRequest{LogStruct: interlink.LogStruct{Namespace: "ns1", PodUID: "uid-1", PodName: "pod-uid-1",
		ContainerName: "main"}}
	if err := p.Logs(ctx, lr, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "main line 1\nmain line 2\nmain line 3\n" {
		t.Errorf("Logs = %q", buf.String())
	}
	buf.Reset()
	lr.Opts = interlink.LogOpts{Tail: 1, Timestamps: true, SinceTime: time.Now()}
	if err := p.Logs(ctx, lr, &buf); err != nil {
		t.Fatal(err)
	}
	if ts, rest, _ := strings.Cut(buf.String(), " "); rest != "main line 3\n" {
		t.Errorf("Logs with Tail 1 and Timestamps = %q", buf.String())
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("Logs with Timestamps: %v", err)
	}

	mfs, err := p.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	creates := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "testbackend_calls_total" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "Create" {
					creates = m.GetCounter().GetValue()
				}
			}
		}
	}
	if creates != 2 {
		t.Errorf("testbackend_calls_total{method=Create} = %v, want 2", creates)
	}

	if err := p.Delete(ctx, backend.DeleteRequest{Pod: pod, RemoteID: res.RemoteID, GracePeriod: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, backend.DeleteRequest{Pod: unknown}); err != nil {
		t.Errorf("Delete of an unknown pod: %v", err)
	}
	if recs, err := p.List(ctx); err != nil || len(recs) != 0 {
		t.Errorf("List after delete = %+v, %v", recs, err)
	}
}

func TestErrorKinds(t *testing.T) {
	p := launch(t, backend.LaunchConfig{})
	ctx := context.Background()
	for _, tc := range []struct {
		annotation string
		kind       backend.ErrorKind
		msg        string
	}{
		{"invalid", backend.KindInvalid, "spec.containers[0].image: asked to fail as invalid"},
		{"not_found", backend.KindNotFound, "pod uid-e: asked to fail as not found"},
		{"unavailable", backend.KindUnavailable, "the memory engine is asked to be unavailable"},
		{"boom", backend.KindInternal, "asked to fail with an internal error (boom)"},
	} {
		pod := testPod("uid-e", map[string]string{"test.interlink.eu/error": tc.annotation})
		_, err := p.Create(ctx, backend.CreateRequest{Pod: pod})
		if backend.KindOf(err) != tc.kind || err.Error() != tc.msg {
			t.Errorf("Create asked to fail with %s: kind %v, error %v", tc.annotation, backend.KindOf(err), err)
		}
		err = p.Delete(ctx, backend.DeleteRequest{Pod: pod})
		if backend.KindOf(err) != tc.kind || err.Error() != tc.msg {
			t.Errorf("Delete asked to fail with %s: kind %v, error %v", tc.annotation, backend.KindOf(err), err)
		}
	}
	_, err := p.Create(ctx, backend.CreateRequest{Pod: testPod("", nil)})
	if backend.KindOf(err) != backend.KindInvalid || err.Error() != "metadata.uid: the pod has no UID" {
		t.Errorf("Create without UID: %v", err)
	}
	err = p.Logs(ctx, backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: "nope", ContainerName: "main"}}, io.Discard)
	if backend.KindOf(err) != backend.KindNotFound || !strings.Contains(err.Error(), "pod nope is not known") {
		t.Errorf("Logs of an unknown pod: %v", err)
	}
}

// tickWriter counts the follow ticks it has received.
type tickWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ticks chan struct{}
}

func (w *tickWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(p, []byte("tick ")) {
		select {
		case w.ticks <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

func followers(t *testing.T, p *backend.Process) float64 {
	t.Helper()
	mfs, err := p.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "testbackend_log_followers" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("the test backend has no testbackend_log_followers metric")
	return 0
}

func TestLogsFollowCancel(t *testing.T) {
	p := launch(t, backend.LaunchConfig{})
	pod := testPod("uid-f", nil)
	if _, err := p.Create(context.Background(), backend.CreateRequest{Pod: pod}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &tickWriter{ticks: make(chan struct{}, 1)}
	errc := make(chan error, 1)
	go func() {
		errc <- p.Logs(ctx, backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: "uid-f", ContainerName: "side",
			Opts: interlink.LogOpts{Follow: true}}}, w)
	}()
	for i := 0; i < 3; i++ {
		select {
		case <-w.ticks:
		case err := <-errc:
			t.Fatalf("Logs with Follow ended before it was cancelled: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("no follow tick arrived in 5 s")
		}
	}
	if n := followers(t, p); n != 1 {
		t.Errorf("followers while following = %v, want 1", n)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Logs after cancel = %v, want an error wrapping context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Logs did not return within 5 s of its cancellation")
	}
	w.mu.Lock()
	got := w.buf.String()
	w.mu.Unlock()
	if !strings.HasPrefix(got, "side line 1\nside line 2\nside line 3\ntick 1\n") {
		t.Errorf("followed log = %q", got)
	}
	// The backend's side of the stream must end too, not keep writing into a dead stream.
	deadline := time.Now().Add(5 * time.Second)
	for followers(t, p) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the backend still follows the log 5 s after the caller cancelled")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestProtocolVersionMismatch(t *testing.T) {
	path := buildTestBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	other := backend.ProtocolVersion + 1
	_, err := backend.Launch(ctx, backend.LaunchConfig{Name: "old", Path: path, Args: []string{"-serve-protocol", strconv.Itoa(other)},
		Logger: slog.New(newRecorder())})
	want := fmt.Sprintf(`backend "old" (%s) speaks backend protocol version %d, but this dispatcher speaks version %d`, path, other, backend.ProtocolVersion)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Launch of a protocol-%d binary: %v\nwant it to contain: %s", other, err, want)
	}

	// A binary that passes the handshake but describes itself with another version is refused the same way.
	_, err = backend.Launch(ctx, backend.LaunchConfig{Name: "liar", Path: path, Logger: slog.New(newRecorder()),
		Env: backend.Env{Config: json.RawMessage(`{"describeProtocol": 7}`)}})
	want = fmt.Sprintf(`backend "liar" (%s) speaks backend protocol version 7, but this dispatcher speaks version %d`, path, backend.ProtocolVersion)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Launch of a binary describing protocol 7: %v\nwant it to contain: %s", err, want)
	}
}

func TestChecksum(t *testing.T) {
	path := buildTestBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wrong := strings.Repeat("0", 64)
	_, err := backend.Launch(ctx, backend.LaunchConfig{Name: "sum", Path: path, SHA256: wrong,
		Logger: slog.New(newRecorder())})
	if err == nil || !strings.Contains(err.Error(), "but its config says sha256 "+wrong) {
		t.Errorf("Launch with a wrong SHA-256: %v", err)
	}
	_, err = backend.Launch(ctx, backend.LaunchConfig{Name: "sum", Path: path, SHA256: "xyz"})
	if err == nil || !strings.Contains(err.Error(), "is not a SHA-256 checksum") {
		t.Errorf("Launch with a malformed SHA-256: %v", err)
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	p := launch(t, backend.LaunchConfig{Name: "sum", SHA256: strings.ToUpper(hex.EncodeToString(sum[:]))})
	if _, err := p.Describe(ctx); err != nil {
		t.Errorf("Describe of a backend with the right SHA-256: %v", err)
	}
}

func TestStderrReEmitted(t *testing.T) {
	rec := newRecorder()
	p := launch(t, backend.LaunchConfig{Name: "mem-logs", Logger: slog.New(rec),
		Env: backend.Env{Instance: "inst-7"}})
	ready := rec.find(t, "memory backend ready")
	if ready.level != slog.LevelInfo || ready.attrs["backend"] != "mem-logs" || ready.attrs["name"] != "mem-logs" ||
		ready.attrs["instance"] != "inst-7" {
		t.Errorf("ready line re-emitted as %+v", ready)
	}
	if _, err := p.Create(context.Background(), backend.CreateRequest{Pod: testPod("uid-l", nil)}); err != nil {
		t.Fatal(err)
	}
	created := rec.find(t, "pod created")
	if created.level != slog.LevelInfo || created.attrs["backend"] != "mem-logs" || created.attrs["uid"] != "uid-l" ||
		created.attrs["namespace"] != "ns1" || created.attrs["containers"] != 0.0 {
		t.Errorf("create line re-emitted as %+v", created)
	}
	if _, ok := created.attrs["timestamp"]; ok {
		t.Errorf("re-emitted line keeps go-plugin's timestamp field: %+v", created)
	}
	if err := p.Delete(context.Background(), backend.DeleteRequest{Pod: testPod("uid-x", nil)}); err != nil {
		t.Fatal(err)
	}
	warn := rec.find(t, "unknown pod deleted")
	if warn.level != slog.LevelWarn || warn.attrs["backend"] != "mem-logs" || warn.attrs["uid"] != "uid-x" {
		t.Errorf("warning re-emitted as %+v", warn)
	}
}

func TestFactoryFailure(t *testing.T) {
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := backend.Launch(ctx, backend.LaunchConfig{Name: "bad", Path: buildTestBackend(t), Logger: slog.New(rec),
		Env: backend.Env{Config: json.RawMessage(`{"failStart": "config key socket: /nope does not exist"}`)}})
	said := "the backend cannot start: config key socket: /nope does not exist"
	want := `backend "bad" (` + testBackend.path + `) did not start; it said: ` + said
	if err == nil || err.Error() != want {
		t.Errorf("Launch with a failing factory: %v\nwant: %s", err, want)
	}
	if r := rec.find(t, said); r.level != slog.LevelError || r.attrs["backend"] != "bad" {
		t.Errorf("factory error re-emitted as %+v", r)
	}
	if r := rec.find(t, "plugin process exited"); r.attrs["err"] != "exit status 1" {
		t.Errorf("the backend's exit after its factory failed was logged as %+v, want exit status 1", r)
	}
}

func TestRunByHand(t *testing.T) {
	path := buildTestBackend(t)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "testbackend is a backend of interlink-dispatcher: the dispatcher starts it"},
		{[]string{backend.Handshake.MagicCookieKey + "=" + backend.Handshake.MagicCookieValue},
			"the environment variable INTERLINK_DISPATCHER_BACKEND_ENV is not set"},
		{[]string{backend.Handshake.MagicCookieKey + "=" + backend.Handshake.MagicCookieValue,
			backend.EnvVar + "={not json"}, "is not the JSON of a backend Env"},
	} {
		cmd := exec.Command(path)
		cmd.Env = tc.env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("with env %v the backend exited with %v, want status 1", tc.env, err)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("with env %v the backend said %q, want %q", tc.env, stderr.String(), tc.want)
		}
	}
}

func TestLaunchBadPath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for path, want := range map[string]string{
		"":                              `backend "x" has no binary path`,
		filepath.Join(dir, "missing"):   "no such file or directory",
		dir:                             "is a directory",
		filepath.Join(dir, "plainfile"): "is not executable",
	} {
		if strings.HasSuffix(path, "plainfile") {
			if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := backend.Launch(ctx, backend.LaunchConfig{Name: "x", Path: path})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Launch(%q) = %v, want an error containing %q", path, err, want)
		}
	}
}

func TestDoneOnKill(t *testing.T) {
	p := launch(t, backend.LaunchConfig{})
	select {
	case <-p.Done():
		t.Fatal("Done is closed while the backend runs")
	case <-time.After(300 * time.Millisecond):
	}
	if err := syscall.Kill(p.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done was not closed 5 s after the backend was SIGKILLed")
	}
	_, err := p.Capacity(context.Background())
	if backend.KindOf(err) != backend.KindUnavailable || err.Error() != `backend "mem" is not running: its process has exited` {
		t.Errorf("Capacity of a dead backend: kind %v, error %v", backend.KindOf(err), err)
	}
}

func TestStop(t *testing.T) {
	p := launch(t, backend.LaunchConfig{})
	start := time.Now()
	p.Stop()
	select {
	case <-p.Done():
	default:
		t.Fatal("Done is not closed after Stop returned")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop took %v: the backend did not exit gracefully", d)
	}
	if err := syscall.Kill(p.PID(), 0); err == nil {
		t.Errorf("the backend process %d still exists after Stop", p.PID())
	}
	p.Stop()
}
