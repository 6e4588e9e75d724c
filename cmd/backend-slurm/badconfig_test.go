package main

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// TestBadConfigExitsWithExitBadConfig runs the built binary as the dispatcher does, with a wrong config:
// it must exit with backend.ExitBadConfig and log one sentence naming every key at fault.
func TestBadConfigExitsWithExitBadConfig(t *testing.T) {
	labtest.RequireBadConfigExit(t, "./cmd/backend-slurm", "slurm", map[string][]string{
		`{"kill_wait": "30 seconds", "runtime": "docker"}`: {`backends.slurm.config.kill_wait: "30 seconds" is not a duration such as "30s"`, `backends.slurm.config.runtime: "docker" is not a runtime`},
		`{"flavors": {"gpu": {"cpuDefualt": 1}}}`:          {"backends.slurm.config.flavors.gpu.cpuDefualt: is not a known key"},
	})
}
