package backend_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// echoBackend answers from what it is asked, so that a test sees what crossed the connection: Create fails
// with the kind a pod's annotation names, Delete records its request, Logs writes its lines one write each.
type echoBackend struct {
	deleted chan backend.DeleteRequest
	lines   []string
}

func (e *echoBackend) Describe(context.Context) (backend.Description, error) {
	return backend.Description{Name: "echo", Version: "1", ProtocolVersion: backend.ProtocolVersion}, nil
}

func (e *echoBackend) Capacity(context.Context) (backend.Capacity, error) {
	return backend.Capacity{}, nil
}

func (e *echoBackend) Create(_ context.Context, req backend.CreateRequest) (backend.CreateResult, error) {
	switch req.Pod.Annotations["fail"] {
	case "invalid":
		return backend.CreateResult{}, backend.Invalid("metadata.uid %q is not a UID", req.Pod.UID)
	case "not_found":
		return backend.CreateResult{}, backend.NotFound("no such image")
	case "unavailable":
		return backend.CreateResult{}, backend.Unavailable("the engine does not answer")
	case "internal":
		return backend.CreateResult{}, io.ErrUnexpectedEOF
	}
	return backend.CreateResult{RemoteID: "remote-" + string(req.Pod.UID)}, nil
}

func (e *echoBackend) Delete(_ context.Context, req backend.DeleteRequest) error {
	e.deleted <- req
	return nil
}

func (e *echoBackend) Status(_ context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	out := make([]interlink.PodStatus, len(pods))
	for i, p := range pods {
		out[i] = interlink.PodStatus{PodName: p.Name, PodUID: string(p.UID), PodNamespace: p.Namespace}
	}
	return out, nil
}

func (e *echoBackend) Logs(ctx context.Context, req backend.LogRequest, w io.Writer) error {
	if req.ContainerName != "main" {
		return backend.NotFound("pod %s has no container %q", req.PodUID, req.ContainerName)
	}
	for _, l := range e.lines {
		if _, err := io.WriteString(w, l); err != nil {
			return err
		}
	}
	if req.Opts.Follow {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (e *echoBackend) List(context.Context) ([]backend.PodRecord, error) { return nil, nil }

func (e *echoBackend) Metrics(context.Context) ([]*dto.MetricFamily, error) { return nil, nil }

// TestServeInProcess checks that a backend served in process is reached through the contract's wire form:
// kinds and messages of errors, requests and streamed logs cross intact, and a stopped connection answers
// as a backend process that has exited.
func TestServeInProcess(t *testing.T) {
	impl := &echoBackend{deleted: make(chan backend.DeleteRequest, 1), lines: []string{"one\n", strings.Repeat("x", 100<<10) + "\n"}}
	c, stop, err := backend.ServeInProcess("echo", impl)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, kind := range []backend.ErrorKind{backend.KindInvalid, backend.KindNotFound, backend.KindUnavailable, backend.KindInternal} {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u1", Annotations: map[string]string{"fail": kind.String()}}}
		_, err := c.Create(ctx, backend.CreateRequest{Pod: p})
		if backend.KindOf(err) != kind {
			t.Errorf("a Create failing with kind %v came back as %v (kind %v)", kind, err, backend.KindOf(err))
		}
	}
	res, err := c.Create(ctx, backend.CreateRequest{Pod: &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u2"}}})
	if err != nil || res.RemoteID != "remote-u2" {
		t.Errorf("Create = %+v, %v; want remote id remote-u2", res, err)
	}

	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u3", Annotations: map[string]string{"JobID": "r3"}}}
	if err := c.Delete(ctx, backend.DeleteRequest{Pod: pod, RemoteID: "r3", GracePeriod: 7 * time.Second}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := <-impl.deleted; got.Pod.UID != "u3" || got.Pod.Annotations["JobID"] != "r3" || got.RemoteID != "r3" ||
		got.GracePeriod != 7*time.Second {
		t.Errorf("the backend got the delete request %+v (pod %+v)", got, got.Pod.ObjectMeta)
	}

	var buf bytes.Buffer
	if err := c.Logs(ctx, backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: "u2", ContainerName: "main"}}, &buf); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if want := strings.Join(impl.lines, ""); buf.String() != want {
		t.Errorf("Logs wrote %d bytes, want the %d the backend wrote", buf.Len(), len(want))
	}
	err = c.Logs(ctx, backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: "u2", ContainerName: "nosuch"}}, io.Discard)
	if backend.KindOf(err) != backend.KindNotFound || !strings.Contains(err.Error(), `no container "nosuch"`) {
		t.Errorf("Logs of an unknown container: %v (kind %v), want the backend's not-found error", err, backend.KindOf(err))
	}

	// A follower is ended by stop, as by a backend process that exits.
	followed := make(chan error, 1)
	go func() {
		followed <- c.Logs(ctx, backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: "u2", ContainerName: "main",
			Opts: interlink.LogOpts{Follow: true}}}, io.Discard)
	}()
	time.Sleep(100 * time.Millisecond)
	stop()
	select {
	case err := <-followed:
		if backend.KindOf(err) != backend.KindUnavailable {
			t.Errorf("a follower cut by stop: %v (kind %v), want an unavailable error", err, backend.KindOf(err))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a follower was not ended by stop")
	}
	_, err = c.Describe(ctx)
	if backend.KindOf(err) != backend.KindUnavailable || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Describe after stop: %v (kind %v), want an unavailable error saying the backend is not running",
			err, backend.KindOf(err))
	}
}
