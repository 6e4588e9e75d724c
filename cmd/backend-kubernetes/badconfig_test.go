package main

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// TestBadConfigExitsWithExitBadConfig runs the built binary as the dispatcher does, with a wrong config:
// it must exit with backend.ExitBadConfig and log one sentence naming every key at fault.
func TestBadConfigExitsWithExitBadConfig(t *testing.T) {
	labtest.RequireBadConfigExit(t, "./cmd/backend-kubernetes", "kubernetes", map[string][]string{
		`{"qps": -1, "namespace": "Not_A_Name"}`: {"backends.kubernetes.config.qps: must not be negative", "backends.kubernetes.config.namespace:"},
		`{"nodeSelector": {"a": "b"}}`:           {"backends.kubernetes.config.nodeSelector: is not a known key; the key is spelled node_selector"},
	})
}
