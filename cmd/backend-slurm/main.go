// Command backend-slurm is the dispatcher's SLURM backend: it runs pods as SLURM batch jobs. The dispatcher
// starts it as a go-plugin; it is not meant to be run by hand.
package main

import (
	"github.com/interlink-hq/interlink-dispatcher/backends/slurm"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

func main() {
	backend.Serve(slurm.New)
}
