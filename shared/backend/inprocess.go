package backend

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// inProcessBuffer is the size of the in-memory connection's buffer each way; gRPC's flow control, not this
// size, bounds what is in flight, so it only needs to hold a few frames.
const inProcessBuffer = 1 << 20

// ServeInProcess serves impl as a backend process serves it (the go-plugin glue GRPCPlugin registering Server
// on the gRPC server Serve uses) and connects to it as the dispatcher does (GRPCPlugin handing out a Client
// with Launch's dial options), over an in-memory connection instead of a socket to another process. Every
// call on the returned Client crosses the contract's wire form: the proto conversions, errors as gRPC
// statuses and back, logs as a stream. name is the backend's name in the Client's errors.
//
// stop closes the connection and stops the server, ending any call still going on; afterwards the Client's
// calls fail with KindUnavailable, as with a backend process that has exited. impl itself is left open.
func ServeInProcess(name string, impl Backend) (c *Client, stop func(), err error) {
	glue, ok := pluginSets(impl)[ProtocolVersion][PluginName].(plugin.GRPCPlugin)
	if !ok {
		return nil, nil, fmt.Errorf("the backend plugin of protocol version %d is not a gRPC plugin", ProtocolVersion)
	}
	lis := bufconn.Listen(inProcessBuffer)
	srv := newGRPCServer(nil)
	if err := glue.GRPCServer(nil, srv); err != nil {
		return nil, nil, fmt.Errorf("cannot register backend %q on its gRPC server: %w", name, err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis) // returns when stop stops srv
	}()
	dial := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
	conn, err := grpc.NewClient("passthrough:///"+name, append([]grpc.DialOption{
		grpc.WithContextDialer(dial), grpc.WithTransportCredentials(insecure.NewCredentials())},
		dialOptions()...)...)
	if err != nil {
		srv.Stop()
		<-served
		return nil, nil, fmt.Errorf("cannot connect to backend %q in process: %w", name, err)
	}
	raw, err := glue.GRPCClient(context.Background(), nil, conn)
	if err == nil {
		c, ok = raw.(*Client)
		if !ok {
			err = fmt.Errorf("the backend plugin hands out a %T, not a *Client", raw)
		}
	}
	if err != nil {
		conn.Close()
		srv.Stop()
		<-served
		return nil, nil, err
	}
	var stopped atomic.Bool
	c.name, c.exited = name, stopped.Load
	var once sync.Once
	stop = func() {
		once.Do(func() {
			stopped.Store(true)
			conn.Close()
			srv.Stop()
			<-served
		})
	}
	return c, stop, nil
}
