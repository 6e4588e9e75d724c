package podman

import (
	"context"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
)

// stateEngine is what the live view and Status ask of Podman: the seam in front of the libpod client that
// lets the state logic (status from list and inspect results, events applied to the view) be tested from
// tables (state_test.go), while the lab tests drive the real client. Launches and deletes use the client.
type stateEngine interface {
	ContainerList(ctx context.Context, labels map[string]string) ([]libpod.ListContainer, error)
	ContainerListInPods(ctx context.Context, labels map[string]string, pods []string) ([]libpod.ListContainer, error)
	ContainerInspect(ctx context.Context, nameOrID string) (libpod.InspectContainer, error)
	Events(ctx context.Context, opt libpod.EventOptions, fn func(libpod.Event) error) error
}

var _ stateEngine = (*libpod.Client)(nil)
