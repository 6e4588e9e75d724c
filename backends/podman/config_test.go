package podman

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

// fakeShim is an executable file standing in for the shim binary: parseConfig only checks that it is one.
func fakeShim(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "interlink-shim")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseConfigDefaultsAndKeys(t *testing.T) {
	shim := fakeShim(t)
	raw, _ := json.Marshal(map[string]any{"shim": shim, "pods": 4, "pull_timeout": "90s", "uri": "tcp://h:1"})
	cfg, pull, warnings, err := parseConfig("podman", raw)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("err %v, warnings %q", err, warnings)
	}
	if cfg.Shim != shim || cfg.Pods != 4 || pull != 90*time.Second || cfg.URI != "tcp://h:1" {
		t.Errorf("cfg %+v, pull %v", cfg, pull)
	}
	raw, _ = json.Marshal(map[string]any{"shim": shim})
	cfg, pull, _, err = parseConfig("podman", raw)
	if err != nil || pull != defaultPullTimeout || cfg.URI != libpod.DefaultURI {
		t.Errorf("defaults: cfg %+v, pull %v, err %v", cfg, pull, err)
	}
}

func TestParseConfigAcceptsPullTimeoutWithAWarning(t *testing.T) {
	raw, _ := json.Marshal(map[string]any{"shim": fakeShim(t), "pullTimeout": "3m"})
	_, pull, warnings, err := parseConfig("podman", raw)
	if err != nil || pull != 3*time.Minute {
		t.Fatalf("pull %v, err %v", pull, err)
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0],
		"config key backends.podman.config.pullTimeout is now spelled backends.podman.config.pull_timeout;") {
		t.Errorf("warnings %q", warnings)
	}
}

func TestParseConfigReportsEveryProblemNamingItsKey(t *testing.T) {
	raw := []byte(`{"pull_timeout": "10 minutes", "pods": -1, "shim": "/nonexistent/interlink-shim", "uri": 7, "pulltimeout": "1m"}`)
	_, _, _, err := parseConfig("podman", raw)
	var ps settings.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %T %v, want settings.Problems", err, err)
	}
	for _, want := range []string{
		`backends.podman.config.pull_timeout: "10 minutes" is not a duration such as "10m"`,
		`backends.podman.config.pods: must be positive, or 0 to leave the pod capacity out, not -1`,
		`backends.podman.config.shim: the shim binary /nonexistent/interlink-shim cannot be used`,
		`backends.podman.config.uri: must be a string, not 7`,
		`backends.podman.config.pulltimeout: is not a known key; the key is spelled pull_timeout`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
	if len(ps) != 5 {
		t.Errorf("%d problems, want 5: %v", len(ps), err)
	}
}
