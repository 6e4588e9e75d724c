// Command backend-kubernetes is the Kubernetes backend of interlink-dispatcher: it offloads pods to another
// Kubernetes cluster. The dispatcher starts it; see backends/kubernetes for what it does and its config keys.
package main

import (
	"github.com/interlink-hq/interlink-dispatcher/backends/kubernetes"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
)

// version and commit are set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=abc123"
// (make build, deploy/run.sh, the image build); left empty, what the Go toolchain recorded stands in.
var version, commit string

func main() {
	buildinfo.PrintIfAsked("backend-kubernetes", version, commit)
	kubernetes.Version = buildinfo.Read(version, commit).Version
	backend.Serve(kubernetes.New)
}
