package backend

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	v1 "k8s.io/api/core/v1"

	backendpb "github.com/interlink-hq/interlink-dispatcher/shared/backend/proto"
)

// logChunkSize bounds one Logs message well under gRPC's default 4 MiB limit, and keeps a follower's
// latency low: a backend's large write goes out in several messages as soon as it is made.
const logChunkSize = 32 << 10

// Server serves any Backend over gRPC; the go-plugin glue (plugin.go) registers it in the backend process.
type Server struct {
	backendpb.UnimplementedBackendServer
	impl Backend
}

// NewServer wraps impl in a gRPC server implementation.
func NewServer(impl Backend) *Server { return &Server{impl: impl} }

var _ backendpb.BackendServer = (*Server)(nil)

// Describe implements the Describe RPC.
func (s *Server) Describe(ctx context.Context, _ *backendpb.DescribeRequest) (*backendpb.DescribeResponse, error) {
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return descriptionToProto(d), nil
}

// Capacity implements the Capacity RPC.
func (s *Server) Capacity(ctx context.Context, _ *backendpb.CapacityRequest) (*backendpb.CapacityResponse, error) {
	c, err := s.impl.Capacity(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	r, err := capacityToProto(c)
	return r, toStatus(err)
}

// Create implements the Create RPC.
func (s *Server) Create(ctx context.Context, in *backendpb.CreateRequest) (*backendpb.CreateResponse, error) {
	// Sent with whatever this handler answers: an error without it is a broken call (see ErrNoAnswer).
	_ = grpc.SetTrailer(ctx, metadata.Pairs(answeredKey, "1"))
	req, err := createRequestFromProto(in)
	if err != nil {
		return nil, toStatus(err)
	}
	res, err := s.impl.Create(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &backendpb.CreateResponse{RemoteId: res.RemoteID}, nil
}

// Delete implements the Delete RPC.
func (s *Server) Delete(ctx context.Context, in *backendpb.DeleteRequest) (*backendpb.DeleteResponse, error) {
	req, err := deleteRequestFromProto(in)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.impl.Delete(ctx, req); err != nil {
		return nil, toStatus(err)
	}
	return &backendpb.DeleteResponse{}, nil
}

// Status implements the Status RPC.
func (s *Server) Status(ctx context.Context, in *backendpb.StatusRequest) (*backendpb.StatusResponse, error) {
	pods := make([]*v1.Pod, 0, len(in.GetPods()))
	for i, b := range in.GetPods() {
		pod, err := decodePod(b)
		if err != nil {
			return nil, toStatus(Errorf(KindInvalid, "pod %d of the status request: %w", i, err))
		}
		pods = append(pods, pod)
	}
	sts, err := s.impl.Status(ctx, pods)
	if err != nil {
		return nil, toStatus(err)
	}
	if len(sts) != len(pods) {
		// The dispatcher pairs statuses with pods by position, so a short answer would misreport pods.
		return nil, toStatus(Errorf(KindInternal,
			"the backend answered %d statuses for %d pods; it must answer one per pod, in order", len(sts), len(pods)))
	}
	r, err := statusesToProto(sts)
	return r, toStatus(err)
}

// Logs implements the Logs RPC: the backend writes into the stream as into any io.Writer.
func (s *Server) Logs(in *backendpb.LogsRequest, stream grpc.ServerStreamingServer[backendpb.LogsChunk]) error {
	w := &streamWriter{stream: stream}
	return toStatus(s.impl.Logs(stream.Context(), logRequestFromProto(in), w))
}

// List implements the List RPC.
func (s *Server) List(ctx context.Context, _ *backendpb.ListRequest) (*backendpb.ListResponse, error) {
	recs, err := s.impl.List(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	r := &backendpb.ListResponse{}
	for _, rec := range recs {
		r.Pods = append(r.Pods, podRecordToProto(rec))
	}
	return r, nil
}

// Metrics implements the Metrics RPC.
func (s *Server) Metrics(ctx context.Context, _ *backendpb.MetricsRequest) (*backendpb.MetricsResponse, error) {
	mfs, err := s.impl.Metrics(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	r, err := metricsToProto(mfs)
	return r, toStatus(err)
}

// streamWriter adapts a Logs stream to the io.Writer a backend writes a log into. Each Write is sent before
// it returns, so a follower sees every line as soon as the backend writes it.
type streamWriter struct {
	stream grpc.ServerStreamingServer[backendpb.LogsChunk]
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > logChunkSize {
			chunk = chunk[:logChunkSize]
		}
		// Send marshals the message before returning, so chunk may alias the caller's buffer.
		if err := w.stream.Send(&backendpb.LogsChunk{Data: chunk}); err != nil {
			return n, fmt.Errorf("the log reader went away: %w", err)
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}
