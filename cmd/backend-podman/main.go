// Command backend-podman is the Podman backend of interlink-dispatcher; the dispatcher starts it.
package main

import (
	"github.com/interlink-hq/interlink-dispatcher/backends/podman"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

func main() {
	backend.Serve(podman.New)
}
