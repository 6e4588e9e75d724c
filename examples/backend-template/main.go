// Command backend-template is a small but real backend of interlink-dispatcher, written as the starting point
// of a new one (see docs/backend-guide.md): it runs each container of a pod as a process on the backend's own
// host, under a detached runner process per pod, and keeps everything it knows about a pod in the pod's
// directory, so that a restarted backend finds its pods again from the files alone.
//
// It isolates nothing: a container is its command, run as the dispatcher's user, on the host's filesystem and
// network; the image is not used. It is a template and a test vehicle, not a way to run untrusted pods.
//
// The dispatcher starts it from a config stanza:
//
//	backends:
//	  - name: process
//	    binary: bin/backend-template
//	    config:
//	      max_pods: 20
//
// The same binary is the pod runner: the backend starts "backend-template run-pod DIR" for each pod.
package main

import (
	"fmt"
	"os"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
)

// version and commit are set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=abc123";
// left empty, what the Go toolchain recorded stands in.
var version, commit string

func main() {
	buildinfo.PrintIfAsked("backend-template", version, commit)
	if len(os.Args) == 3 && os.Args[1] == runPodCommand {
		if err := runPod(os.Args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "backend-template run-pod: %v\n", err)
			os.Exit(1)
		}
		return
	}
	Version = buildinfo.Read(version, commit).Version
	backend.Serve(New)
}
