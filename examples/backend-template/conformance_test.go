package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// TestConformance runs the harness against the built binary, launched as the dispatcher launches it. The
// scenarios needing a feature the template does not declare (volumes, restarts, probes...) are skipped by
// the harness itself, and listed in its summary.
func TestConformance(t *testing.T) {
	bin := labtest.BuildBinary(t, "./examples/backend-template")
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := backend.Launch(ctx, backend.LaunchConfig{Name: "process", Path: bin,
		Env:    backend.Env{Instance: "conformance", DataDir: dataDir, Config: json.RawMessage(`{"max_pods": 50}`)},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	conformance.Run(t, p, conformance.Options{Parallel: true, PodTimeout: time.Minute,
		Vanish: func(t testing.TB, uid, _ string) { vanish(t, filepath.Join(dataDir, "pods", uid)) }})
}

// vanish kills a pod's whole process tree behind the backend's back, as an operator's kill -9 would.
func vanish(t testing.TB, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "runner.pid"))
	if err != nil {
		t.Fatalf("the pod has no runner pid: %v", err)
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 of the pod's process group %d: %v", pgid, err)
	}
	if !waitGroupGone(context.Background(), pgid, 10*time.Second) {
		t.Fatalf("the pod's process group %d is still there after SIGKILL", pgid)
	}
}

// TestConfigRefusals checks that a bad config section fails the start with a sentence naming the key.
func TestConfigRefusals(t *testing.T) {
	for cfg, want := range map[string]string{
		`{"max_pod": 3}`:  `unknown field "max_pod"`,
		`{"max_pods": 0}`: "config.max_pods: 0 is not a pod count",
		`{"shell": 3}`:    "cannot unmarshal number",
	} {
		_, err := New(context.Background(), backend.Env{Name: "process", DataDir: t.TempDir(), Config: json.RawMessage(cfg)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %s: error %v, want one containing %q", cfg, err, want)
		}
	}
}
