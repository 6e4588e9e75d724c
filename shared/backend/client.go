package backend

import (
	"context"
	"errors"
	"fmt"
	"io"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	v1 "k8s.io/api/core/v1"

	backendpb "github.com/interlink-hq/interlink-dispatcher/shared/backend/proto"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// Client is a Backend whose calls go over gRPC to a backend process. Errors come back as *Error with the
// backend's own kind and message.
type Client struct {
	rpc backendpb.BackendClient

	// Set by Launch: the backend's name and whether its process has exited, so that a call to a dead
	// backend says so instead of quoting gRPC's transport error.
	name   string
	exited func() bool
}

// NewClient returns a Backend that calls the backend served on conn.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{rpc: backendpb.NewBackendClient(conn)}
}

var _ Backend = (*Client)(nil)

// Describe implements Backend.
func (c *Client) Describe(ctx context.Context) (Description, error) {
	r, err := c.rpc.Describe(ctx, &backendpb.DescribeRequest{})
	if err != nil {
		return Description{}, c.fail("Describe", err)
	}
	return descriptionFromProto(r), nil
}

// Capacity implements Backend.
func (c *Client) Capacity(ctx context.Context) (Capacity, error) {
	r, err := c.rpc.Capacity(ctx, &backendpb.CapacityRequest{})
	if err != nil {
		return Capacity{}, c.fail("Capacity", err)
	}
	return capacityFromProto(r)
}

// Create implements Backend.
func (c *Client) Create(ctx context.Context, req CreateRequest) (CreateResult, error) {
	in, err := createRequestToProto(req)
	if err != nil {
		return CreateResult{}, err
	}
	var trailer metadata.MD
	r, err := c.rpc.Create(ctx, in, grpc.Trailer(&trailer))
	if err != nil {
		e := c.fail("Create", err)
		if len(trailer.Get(answeredKey)) == 0 && ctx.Err() == nil && KindOf(e) == KindUnavailable {
			return CreateResult{}, &Error{Kind: KindUnavailable, Msg: e.Error(), Err: errors.Join(ErrNoAnswer, e)}
		}
		return CreateResult{}, e
	}
	return CreateResult{RemoteID: r.GetRemoteId()}, nil
}

// ErrNoAnswer is in the chain of a Create error the backend did not send: the call broke (its process
// died, the connection dropped) after the request may have reached it, so the backend may have recorded the
// pod or not. Asking again (Create is idempotent on the UID) tells. A backend's own refusals never carry it.
var ErrNoAnswer = errors.New("the backend's answer was lost")

// answeredKey is the trailer a backend's server sets on the errors it answers to Create, which is how
// the client tells them from a broken call.
const answeredKey = "interlink-dispatcher-answered"

// Delete implements Backend.
func (c *Client) Delete(ctx context.Context, req DeleteRequest) error {
	in, err := deleteRequestToProto(req)
	if err != nil {
		return err
	}
	_, err = c.rpc.Delete(ctx, in)
	return c.fail("Delete", err)
}

// Status implements Backend.
func (c *Client) Status(ctx context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	in := &backendpb.StatusRequest{Pods: make([][]byte, len(pods))}
	for i, pod := range pods {
		b, err := encodeKube("the pod", pod)
		if err != nil {
			return nil, err
		}
		in.Pods[i] = b
	}
	r, err := c.rpc.Status(ctx, in)
	if err != nil {
		return nil, c.fail("Status", err)
	}
	if len(r.GetStatuses()) != len(pods) {
		return nil, Errorf(KindInternal, "the backend answered %d statuses for %d pods", len(r.GetStatuses()), len(pods))
	}
	sts := make([]interlink.PodStatus, len(r.GetStatuses()))
	for i, ps := range r.GetStatuses() {
		if sts[i], err = statusFromProto(ps); err != nil {
			return nil, err
		}
	}
	return sts, nil
}

// Logs implements Backend. Each chunk is written to w as soon as it arrives; flushing w (an http.Flusher,
// say) after each write is the caller's business. Cancelling ctx ends the stream in the backend too, and
// Logs then returns an error wrapping ctx's error.
func (c *Client) Logs(ctx context.Context, req LogRequest, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	// Cancelling on return releases the stream's resources when w fails mid-way.
	defer cancel()
	stream, err := c.rpc.Logs(ctx, logRequestToProto(req))
	if err != nil {
		return c.fail("Logs", err)
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return c.fail("Logs", err)
		}
		if _, err := w.Write(chunk.GetData()); err != nil {
			// The reader (the dispatcher's HTTP client) went away: not a backend error, so it is returned as is.
			return err
		}
	}
}

// List implements Backend.
func (c *Client) List(ctx context.Context) ([]PodRecord, error) {
	r, err := c.rpc.List(ctx, &backendpb.ListRequest{})
	if err != nil {
		return nil, c.fail("List", err)
	}
	recs := make([]PodRecord, 0, len(r.GetPods()))
	for _, p := range r.GetPods() {
		recs = append(recs, podRecordFromProto(p))
	}
	return recs, nil
}

// Metrics implements Backend.
func (c *Client) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	r, err := c.rpc.Metrics(ctx, &backendpb.MetricsRequest{})
	if err != nil {
		return nil, c.fail("Metrics", err)
	}
	return metricsFromProto(r)
}

// fail turns a call's error into the backend's *Error.
func (c *Client) fail(method string, err error) error {
	e := fromStatus(method, err)
	if e != nil && c.exited != nil && KindOf(e) == KindUnavailable && c.exited() {
		return &Error{Kind: KindUnavailable, Err: err,
			Msg: fmt.Sprintf("backend %q is not running: its process has exited", c.name)}
	}
	return e
}
