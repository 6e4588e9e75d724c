// Command backend-slurm is the dispatcher's SLURM backend: it runs pods as SLURM batch jobs. The dispatcher
// starts it as a go-plugin; it is not meant to be run by hand.
package main

import (
	"github.com/interlink-hq/interlink-dispatcher/backends/slurm"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
)

// version and commit are set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=abc123"
// (make build, deploy/run.sh, the image build); left empty, what the Go toolchain recorded stands in.
var version, commit string

func main() {
	buildinfo.PrintIfAsked("backend-slurm", version, commit)
	slurm.Version = buildinfo.Read(version, commit).Version
	backend.Serve(slurm.New)
}
