package main

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// TestBadConfigExitsWithExitBadConfig runs the built binary as the dispatcher does, with a wrong config:
// it must exit with backend.ExitBadConfig and log one sentence naming every key at fault.
func TestBadConfigExitsWithExitBadConfig(t *testing.T) {
	labtest.RequireBadConfigExit(t, "./cmd/backend-docker", "docker", map[string][]string{
		`{"restart_backoff": "10 minutes", "pods": -1}`: {`backends.docker.config.restart_backoff: "10 minutes" is not a duration such as "10m"`, `backends.docker.config.pods: must be positive, not -1`},
		`{"restartBackoff": "1s"}`:                      {"backends.docker.config.restartBackoff: is not a known key; the key is spelled restart_backoff"},
	})
}
