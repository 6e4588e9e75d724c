// Command pause holds a pod's network and IPC namespaces for the Docker backend: it does nothing until it is
// asked to stop, and reaps any child that ends up under it. It imports nothing that needs cgo, so it builds
// as a static binary that the backend can import into a one-file image without any registry.
package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
)

// version and commit are set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var version, commit string

func main() {
	buildinfo.PrintIfAsked("pause", version, commit)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
