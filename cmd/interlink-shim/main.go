// Command interlink-shim is the entrypoint every backend gives its containers: it runs the container's
// command and carries out its probes and lifecycle hooks from inside (see package shared/shim). Build it
// with CGO_ENABLED=0 so that it runs in any image.
package main

import (
	"os"

	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// version and commit are set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var version, commit string

func main() {
	buildinfo.PrintIfAsked("interlink-shim", version, commit)
	os.Exit(shim.Main(os.Args[1:]))
}
