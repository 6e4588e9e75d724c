// Command backend-podman is the Podman backend of interlink-dispatcher; the dispatcher starts it.
package main

import (
	"github.com/interlink-hq/interlink-dispatcher/backends/podman"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
)

// version and commit are set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var version, commit string

func main() {
	buildinfo.PrintIfAsked("backend-podman", version, commit)
	backend.Serve(podman.New)
}
