// Command interlink-shim is the entrypoint every backend gives its containers: it runs the container's
// command and carries out its probes and lifecycle hooks from inside (see package shared/shim). Build it
// with CGO_ENABLED=0 so that it runs in any image.
package main

import (
	"os"

	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

func main() { os.Exit(shim.Main(os.Args[1:])) }
