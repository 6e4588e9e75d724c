package backend

import (
	"context"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	backendpb "github.com/interlink-hq/interlink-dispatcher/shared/backend/proto"
)

// GRPCPlugin is the go-plugin glue: in the backend process it serves Impl, in the dispatcher it hands out a
// Client. Only gRPC is spoken.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl is the backend served; nil on the dispatcher's side.
	Impl Backend
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the backend's gRPC server.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	backendpb.RegisterBackendServer(s, NewServer(p.Impl))
	return nil
}

// GRPCClient returns the Backend that calls the backend process over conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewClient(conn), nil
}
