// Command exitbadconfig is a backend binary whose config is wrong: as every backend does then, it says
// why in one sentence on stderr and exits with backend.ExitBadConfig, before any handshake. With the
// argument "crash" it exits with status 1 instead, as a backend that failed for another reason.
package main

import (
	"fmt"
	"os"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "crash" {
		fmt.Fprintln(os.Stderr, "the engine socket /nowhere.sock does not answer")
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "config key socket: 42 is not a path; give the engine's unix socket, e.g. /run/docker.sock")
	os.Exit(backend.ExitBadConfig)
}
