// Command backend-docker is the Docker Engine backend of interlink-dispatcher. The dispatcher starts it;
// see backends/docker for what it does and its config keys.
package main

import (
	"github.com/interlink-hq/interlink-dispatcher/backends/docker"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3" (make build, deploy/run.sh); left
// empty, the backend reports the module version or VCS revision the Go toolchain recorded.
var version string

func main() {
	docker.Version = backend.BuildVersion(version)
	backend.Serve(docker.New)
}
