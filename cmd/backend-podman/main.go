// Command backend-podman is the Podman backend of interlink-dispatcher; the dispatcher starts it.
package main

import (
	"github.com/interlink-hq/interlink-dispatcher/backends/podman"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3" (make build, deploy/run.sh); left
// empty, the backend reports the module version or VCS revision the Go toolchain recorded.
var version string

func main() {
	podman.Version = backend.BuildVersion(version)
	backend.Serve(podman.New)
}
