// Command backend-slurm is the dispatcher's SLURM backend: it runs pods as SLURM batch jobs. The dispatcher
// starts it as a go-plugin; it is not meant to be run by hand.
package main

import (
	"github.com/interlink-hq/interlink-dispatcher/backends/slurm"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3" (make build, deploy/run.sh); left
// empty, the backend reports the module version or VCS revision the Go toolchain recorded.
var version string

func main() {
	slurm.Version = backend.BuildVersion(version)
	backend.Serve(slurm.New)
}
