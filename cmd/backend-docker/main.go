// Command backend-docker is the Docker Engine backend of interlink-dispatcher. The dispatcher starts it;
// see backends/docker for what it does and its config keys.
package main

import (
	"github.com/interlink-hq/interlink-dispatcher/backends/docker"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
)

// version and commit are set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=abc123"
// (make build, deploy/run.sh, the image build); left empty, what the Go toolchain recorded stands in.
var version, commit string

func main() {
	buildinfo.PrintIfAsked("backend-docker", version, commit)
	docker.Version = buildinfo.Read(version, commit).Version
	backend.Serve(docker.New)
}
