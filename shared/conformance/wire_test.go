package conformance

import (
	"context"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// describeProbe is a backend of which only Describe is called: it notes whether the call came in through a
// gRPC server.
type describeProbe struct {
	backend.Backend
	viaGRPC bool
}

func (p *describeProbe) Describe(ctx context.Context) (backend.Description, error) {
	_, p.viaGRPC = metadata.FromIncomingContext(ctx)
	return backend.Description{Name: "probe", Version: "1", ProtocolVersion: backend.ProtocolVersion}, nil
}

// TestOverTheWire checks that the harness reaches a backend's Go value through the contract's gRPC server,
// and a backend already reached over gRPC as it is.
func TestOverTheWire(t *testing.T) {
	p := &describeProbe{}
	b := overTheWire(t, p)
	if _, err := b.Describe(context.Background()); err != nil {
		t.Fatalf("Describe over the wire: %v", err)
	}
	if !p.viaGRPC {
		t.Error("the harness called the backend's Go value directly, not through the gRPC server")
	}
	if again := overTheWire(t, b); again != b {
		t.Errorf("a backend already reached over gRPC was wrapped again (%T)", again)
	}
}
