package podman

import (
	"os"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

func createReq(p *v1.Pod, objs ...interlink.RetrievedContainer) backend.CreateRequest {
	return backend.CreateRequest{Pod: p, Containers: objs}
}

func kindOf(err error) string { return backend.KindOf(err).String() }

func statDir(path string) (os.FileInfo, error) { return os.Stat(path) }
