package main

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// TestBadConfigExitsWithExitBadConfig runs the built binary as the dispatcher does, with a wrong config:
// it must exit with backend.ExitBadConfig and log one sentence naming every key at fault.
func TestBadConfigExitsWithExitBadConfig(t *testing.T) {
	labtest.RequireBadConfigExit(t, "./cmd/backend-podman", "podman", map[string][]string{
		`{"pull_timeout": "10 minutes"}`:        {`backends.podman.config.pull_timeout: "10 minutes" is not a duration such as "10m"`},
		`{"pulltimeout": "1m", "pods": "many"}`: {"backends.podman.config.pulltimeout: is not a known key; the key is spelled pull_timeout", `backends.podman.config.pods: must be a whole number, not "many"`},
	})
}
