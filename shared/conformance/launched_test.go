//go:build conformancelab

package conformance_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// TestLaunchedBackend runs the harness against any backend binary, launched as the dispatcher launches it,
// which the backends' own tests (in process) do not cover:
//
//	go build -o /tmp/backend-podman ./cmd/backend-podman
//	INTERLINK_CONFORMANCE_BINARY=/tmp/backend-podman INTERLINK_CONFORMANCE_CONFIG='{}' \
//	  go test -tags conformancelab -run TestLaunchedBackend ./shared/conformance/
//
// INTERLINK_CONFORMANCE_SKIP lists scenario names to skip, comma-separated;
// INTERLINK_CONFORMANCE_POD_TIMEOUT (a Go duration) sets Options.PodTimeout;
// INTERLINK_CONFORMANCE_SERIAL=1 runs the scenarios one after the other.
func TestLaunchedBackend(t *testing.T) {
	bin := os.Getenv("INTERLINK_CONFORMANCE_BINARY")
	if bin == "" {
		t.Skip("INTERLINK_CONFORMANCE_BINARY names no backend binary to run the harness against")
	}
	cfg := os.Getenv("INTERLINK_CONFORMANCE_CONFIG")
	if cfg == "" {
		cfg = "{}"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := backend.Launch(ctx, backend.LaunchConfig{Name: "conformance", Path: bin,
		Env:    backend.Env{Instance: "conformance", DataDir: t.TempDir(), Config: json.RawMessage(cfg)},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	skip := map[string]string{}
	for _, s := range strings.Split(os.Getenv("INTERLINK_CONFORMANCE_SKIP"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			skip[s] = "INTERLINK_CONFORMANCE_SKIP"
		}
	}
	opts := conformance.Options{Parallel: os.Getenv("INTERLINK_CONFORMANCE_SERIAL") != "1", Skip: skip}
	if d := os.Getenv("INTERLINK_CONFORMANCE_POD_TIMEOUT"); d != "" {
		if opts.PodTimeout, err = time.ParseDuration(d); err != nil {
			t.Fatalf("INTERLINK_CONFORMANCE_POD_TIMEOUT: %v", err)
		}
	}
	conformance.Run(t, p, opts)
}
