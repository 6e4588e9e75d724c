package libpod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

func labClient(t *testing.T) *Client {
	t.Helper()
	labtest.RequirePodman(t)
	c, err := New("unix://"+labtest.PodmanSocket, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPingAndInfo(t *testing.T) {
	c := labClient(t)
	ctx := context.Background()
	v, err := c.Ping(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckVersion(v); err != nil {
		t.Fatalf("the lab's Podman is refused: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Host.CPUs < 1 || info.Host.MemTotal <= 0 {
		t.Fatalf("info reports %d CPUs and %d bytes of memory", info.Host.CPUs, info.Host.MemTotal)
	}
}

// A pod of two containers: they share localhost, the engine reports exits through wait and died events, and
// the log keeps stdout and stderr in order with their times.
func TestPodLifecycle(t *testing.T) {
	c := labClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.ImagePull(ctx, "docker.io/library/"+labtest.BusyboxImage, PullMissing); err != nil {
		t.Fatal(err)
	}
	run := fmt.Sprintf("libpodtest%d", time.Now().UnixNano())
	labels := map[string]string{"libpod-test": run}
	podID, err := c.PodCreate(ctx, PodSpec{Name: run, Labels: labels, Hostname: "lifecycle", Share: []string{"net", "ipc", "uts"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.PodRemove(context.Background(), podID, true) })

	server, err := c.ContainerCreate(ctx, ContainerSpec{Name: run + "-server", Pod: podID, Image: labtest.BusyboxImage, Labels: labels,
		Command: []string{"sh", "-c", "echo hello-from-server > /tmp/i; httpd -f -p 127.0.0.1:8080 -h /tmp"}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := c.ContainerCreate(ctx, ContainerSpec{Name: run + "-client", Pod: podID, Image: labtest.BusyboxImage, Labels: labels,
		Command: []string{"sh", "-c", "for i in $(seq 50); do wget -q -O - http://localhost:8080/i 2>/dev/null && break; sleep 0.2; done; echo to-stderr >&2; exit 7"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerStart(ctx, server); err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerStart(ctx, client); err != nil {
		t.Fatal(err)
	}
	code, err := c.ContainerWait(ctx, client, "exited", "stopped")
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 {
		t.Fatalf("wait returned exit code %d, want 7", code)
	}

	lr, err := c.ContainerLogs(ctx, client, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		l, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if l.Time.IsZero() {
			t.Errorf("log line %q has no time", l.Text)
		}
		got = append(got, fmt.Sprintf("%v:%s", l.Stderr, strings.TrimSpace(string(l.Text))))
	}
	lr.Close()
	if strings.Join(got, "|") != "false:hello-from-server|true:to-stderr" {
		t.Fatalf("logs = %q, want the server's page on stdout then to-stderr on stderr", got)
	}

	list, err := c.ContainerList(ctx, labels)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 { // the infra container carries the pod's labels too
		t.Fatalf("list by label found %d containers, want 3 (infra, server, client)", len(list))
	}
	ins, err := c.ContainerInspect(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if ins.State.Status != "exited" || ins.State.ExitCode != 7 || ins.Config.Labels["libpod-test"] != run {
		t.Fatalf("inspect: state %+v labels %v", ins.State, ins.Config.Labels)
	}
	var died []int32
	err = c.Events(ctx, EventOptions{Filters: map[string][]string{"container": {client}, "event": {"died"}}}, func(e Event) error {
		if code, ok := e.ExitCode(); ok {
			died = append(died, code)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(died) != 1 || died[0] != 7 {
		t.Fatalf("died events carry exit codes %v, want [7]", died)
	}
	pods, err := c.PodList(ctx, labels)
	if err != nil || len(pods) != 1 || pods[0].ID != podID {
		t.Fatalf("pod list by label = %+v, %v", pods, err)
	}
	if err := c.PodStop(ctx, podID, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.PodRemove(ctx, podID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ContainerInspect(ctx, server); !IsNotFound(err) {
		t.Fatalf("inspect after pod remove = %v, want not found", err)
	}
	if err := c.PodRemove(ctx, podID, true); err != nil {
		t.Fatalf("removing a pod twice = %v, want nil", err)
	}
}

// Follow streams lines as they come and ends when the container exits.
func TestLogsFollowEndsWithContainer(t *testing.T) {
	c := labClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("libpodfollow%d", time.Now().UnixNano())
	id, err := c.ContainerCreate(ctx, ContainerSpec{Name: name, Image: labtest.BusyboxImage,
		Command: []string{"sh", "-c", "for i in 1 2 3; do echo line$i; sleep 1; done"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.ContainerRemove(context.Background(), id, true) })
	if err := c.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	lr, err := c.ContainerLogs(ctx, id, LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	var got []string
	for {
		l, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.TrimSpace(string(l.Text)))
	}
	if ctx.Err() != nil {
		t.Fatal("the follow did not end when the container exited")
	}
	if strings.Join(got, ",") != "line1,line2,line3" {
		t.Fatalf("followed lines = %q", got)
	}
}

func TestImagePullErrors(t *testing.T) {
	c := labClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.ImagePull(ctx, "127.0.0.1:5000/no-such-image:never", PullAlways)
	var e *Error
	if !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("pulling a missing image = %v, want an *Error with the registry's message", err)
	}
	ok, err := c.ImageExists(ctx, "127.0.0.1:5000/no-such-image:never")
	if err != nil || ok {
		t.Fatalf("ImageExists(missing) = %v, %v", ok, err)
	}
	ok, err = c.ImageExists(ctx, labtest.BusyboxImage)
	if err != nil || !ok {
		t.Fatalf("ImageExists(busybox) = %v, %v", ok, err)
	}
}
