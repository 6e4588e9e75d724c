// Command backend-docker is the Docker Engine backend of interlink-dispatcher. The dispatcher starts it;
// see backends/docker for what it does and its config keys.
package main

import (
	"github.com/interlink-hq/interlink-dispatcher/backends/docker"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

func main() {
	backend.Serve(docker.New)
}
