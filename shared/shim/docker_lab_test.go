package shim_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim/shimtest"
)

// dockerRun is one container run the way a backend runs it: the shim as entrypoint, its binary and the
// state directory bind-mounted.
type dockerRun struct {
	t   *testing.T
	cli *client.Client
	id  string
	dir string
}

func dockerStart(t *testing.T, cli *client.Client, img, user string, spec shim.Spec) *dockerRun {
	t.Helper()
	ctx := context.Background()
	if _, err := cli.ImageInspect(ctx, img); err != nil {
		rc, err := cli.ImagePull(ctx, img, image.PullOptions{})
		if err != nil {
			t.Fatalf("cannot pull %s through the lab's mirror: %v", img, err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	dir := filepath.Join(t.TempDir(), "shim", "c")
	if err := shim.WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	created, err := cli.ContainerCreate(ctx,
		&container.Config{Image: img, Entrypoint: shim.Entrypoint(), Cmd: nil, User: user,
			Labels: map[string]string{"dispatcher.interlink.eu/test": "shim"}},
		&container.HostConfig{
			// No network but loopback: probes can only work from inside the container.
			NetworkMode: "none",
			Mounts: []mount.Mount{
				{Type: mount.TypeBind, Source: shimtest.Build(t), Target: shim.BinaryPath, ReadOnly: true},
				{Type: mount.TypeBind, Source: dir, Target: shim.StateDir},
			},
		}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	r := &dockerRun{t: t, cli: cli, id: created.ID, dir: dir}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), r.id, container.RemoveOptions{Force: true}) })
	if err := cli.ContainerStart(ctx, r.id, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *dockerRun) logs() string {
	rc, err := r.cli.ContainerLogs(context.Background(), r.id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		r.t.Fatal(err)
	}
	defer rc.Close()
	var out bytes.Buffer
	stdcopy.StdCopy(&out, &out, rc)
	return out.String()
}

func (r *dockerRun) wait(timeout time.Duration) int {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ok, errs := r.cli.ContainerWait(ctx, r.id, container.WaitConditionNotRunning)
	select {
	case w := <-ok:
		return int(w.StatusCode)
	case err := <-errs:
		r.t.Fatalf("container did not end: %v; log:\n%s", err, r.logs())
	}
	return 0
}

func (r *dockerRun) state() shim.State {
	r.t.Helper()
	st, err := shim.ReadState(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

func TestInsideDocker(t *testing.T) {
	labtest.RequireDocker(t)
	cli, err := client.NewClientWithOpts(client.WithHost("unix://"+labtest.DockerSocket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	t.Run("busybox httpd with probes and hooks", func(t *testing.T) {
		grace := int64(10)
		r := dockerStart(t, cli, labtest.BusyboxImage, "", shim.Spec{
			Argv:  []string{"sh", "-c", "mkdir -p /www && echo ok > /www/ready && echo main started && exec httpd -f -p 8080 -h /www"},
			Ports: []v1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: v1.ProtocolTCP}},
			Lifecycle: &v1.Lifecycle{
				PostStart: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo postStart hook executed! | tee /tmp/marker"}}},
				PreStop:   &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo preStop hook executed!; cat /tmp/marker"}}},
			},
			ReadinessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}},
				PeriodSeconds: 1},
			// Each liveness round leaves a line in the state directory, which the test reads from the host.
			LivenessProbe: &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{
				Command: []string{"sh", "-c", "echo >> " + shim.StateDir + "/liveness-rounds; test -f /tmp/marker"}}},
				InitialDelaySeconds: 1, PeriodSeconds: 1, FailureThreshold: 2},
			TerminationGracePeriodSeconds: &grace,
		})
		deadline := time.Now().Add(20 * time.Second)
		for st := r.state(); st.Ready == nil || !*st.Ready; st = r.state() {
			if time.Now().After(deadline) || st.Exited {
				t.Fatalf("the container never became ready: %+v; log:\n%s", st, r.logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
		// A few liveness rounds past the failure threshold: a healthy container must stay up.
		labtest.WaitForLines(t, filepath.Join(r.dir, "liveness-rounds"), 3, 30*time.Second)
		if st := r.state(); st.Exited || st.StartedAt.IsZero() {
			t.Fatalf("state %+v, want running since a start time", st)
		}
		timeout := int(grace) + 5
		if err := cli.ContainerStop(context.Background(), r.id, container.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		if code := r.wait(30 * time.Second); code != 143 {
			t.Errorf("exit code %d, want 143 (httpd ended by the forwarded SIGTERM)", code)
		}
		if st := r.state(); !st.Exited || st.ExitCode != 143 || *st.Ready {
			t.Errorf("state %+v, want exit 143 and not ready", st)
		}
		log := r.logs()
		for _, want := range []string{"main started\n", "postStart hook executed!\n", "preStop hook executed!\npostStart hook executed!\n"} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
	})

	t.Run("python server probed as in the test set's 090", func(t *testing.T) {
		script := `
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        line = {"/startup": "Startup probe: OK", "/healthz": "Liveness probe: OK", "/ready": "Readiness probe: Ready"}.get(self.path)
        print(line, flush=True)
        self.send_response(200 if line else 404)
        self.end_headers()
    def log_message(self, *a):
        pass
print("Starting HTTP server on port 8080", flush=True)
http.server.HTTPServer(("", 8080), H).serve_forever()
`
		get := func(path string) v1.ProbeHandler {
			return v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: path, Port: intstr.FromInt(8080), Scheme: v1.URISchemeHTTP}}
		}
		r := dockerStart(t, cli, labtest.PythonImage, "", shim.Spec{
			Argv:           []string{"python3", "-u", "-c", script},
			Ports:          []v1.ContainerPort{{ContainerPort: 8080, Protocol: v1.ProtocolTCP}},
			StartupProbe:   &v1.Probe{ProbeHandler: get("/startup"), InitialDelaySeconds: 1, PeriodSeconds: 10, FailureThreshold: 5, TimeoutSeconds: 1},
			LivenessProbe:  &v1.Probe{ProbeHandler: get("/healthz"), InitialDelaySeconds: 1, PeriodSeconds: 1, FailureThreshold: 3, TimeoutSeconds: 1},
			ReadinessProbe: &v1.Probe{ProbeHandler: get("/ready"), InitialDelaySeconds: 1, PeriodSeconds: 1, FailureThreshold: 3, TimeoutSeconds: 1},
		})
		deadline := time.Now().Add(20 * time.Second)
		for st := r.state(); st.Ready == nil || !*st.Ready; st = r.state() {
			if time.Now().After(deadline) || st.Exited {
				t.Fatalf("the container never became ready: %+v; log:\n%s", st, r.logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Two liveness rounds, and the readiness round that made it ready: the server prints each.
		for deadline := time.Now().Add(20 * time.Second); strings.Count(r.logs(), "Liveness probe: OK") < 2 ||
			!strings.Contains(r.logs(), "Readiness probe: Ready"); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the liveness and readiness probes did not reach the server twice within 20 s; log:\n%s", r.logs())
			}
		}
		log := r.logs()
		for _, want := range []string{"Starting HTTP server on port 8080", "Startup probe: OK", "Liveness probe: OK", "Readiness probe: Ready"} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		if n := strings.Count(log, "Startup probe: OK"); n != 1 {
			t.Errorf("startup probe ran %d times after succeeding, want once", n)
		}
		if st := r.state(); st.Exited {
			t.Errorf("a healthy server was stopped: %+v", st)
		}
	})

	t.Run("debian image as nobody with preStop after a natural exit", func(t *testing.T) {
		r := dockerStart(t, cli, labtest.PythonImage, "65534", shim.Spec{
			Argv:          []string{"python3", "-c", "print('Container main process completed', flush=True); raise SystemExit(3)"},
			Lifecycle:     &v1.Lifecycle{PreStop: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo preStop hook completed by $(id -u)"}}}},
			PreStopOnExit: true,
		})
		if code := r.wait(30 * time.Second); code != 3 {
			t.Errorf("exit code %d, want the command's 3; log:\n%s", code, r.logs())
		}
		if st := r.state(); !st.Exited || st.ExitCode != 3 {
			t.Errorf("state %+v, want exit 3", st)
		}
		if log := r.logs(); !strings.Contains(log, "Container main process completed\npreStop hook completed by 65534\n") {
			t.Errorf("log %q, want the command's line then preStop's", log)
		}
	})

	t.Run("missing command", func(t *testing.T) {
		r := dockerStart(t, cli, labtest.BusyboxImage, "", shim.Spec{Argv: []string{"nonexistent-command"}})
		if code := r.wait(30 * time.Second); code != 127 {
			t.Errorf("exit code %d, want 127", code)
		}
		if st := r.state(); st.Reason != shim.ReasonStartError {
			t.Errorf("state %+v, want reason StartError", st)
		}
		if log := r.logs(); !strings.Contains(log, "executable file not found in $PATH") {
			t.Errorf("log %q does not say the command is missing", log)
		}
	})
}
