package conformance

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// overTheWire returns b as the dispatcher holds a backend: b itself when its calls already cross gRPC (a
// Process from backend.Launch, a *backend.Client), else b served in process by the contract's own gRPC
// server and reached through its own client (backend.ServeInProcess), so that every scenario exercises the
// proto conversions, the error kinds as they cross as gRPC statuses, and logs as a stream. The connection is
// closed when t ends, after the cleanups registered later (the scenarios' deletes) have run.
func overTheWire(t testing.TB, b backend.Backend) backend.Backend {
	t.Helper()
	switch b.(type) {
	case *backend.Process, *backend.Client:
		return b
	}
	c, stop, err := backend.ServeInProcess("conformance", b)
	if err != nil {
		t.Fatalf("cannot serve the backend over gRPC in process: %v", err)
	}
	t.Cleanup(stop)
	return c
}
