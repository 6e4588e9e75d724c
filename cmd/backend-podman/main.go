// Command backend-podman is the Podman backend of interlink-dispatcher; the dispatcher starts it.
package main

import (
	"github.com/interlink-hq/interlink-dispatcher/backends/podman"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
)

// version and commit are set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=abc123"
// (make build, deploy/run.sh, the image build); left empty, what the Go toolchain recorded stands in.
var version, commit string

func main() {
	buildinfo.PrintIfAsked("backend-podman", version, commit)
	podman.Version = buildinfo.Read(version, commit).Version
	backend.Serve(podman.New)
}
