package docker

import (
	"context"
	"errors"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// engineError turns an Engine API error into a backend error: an unreachable engine is KindUnavailable, an
// unknown object KindNotFound, a request the engine refuses KindInvalid, the rest KindInternal. what says
// what the backend was doing, as the start of a sentence.
func engineError(what string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case client.IsErrConnectionFailed(err), errors.Is(err, context.DeadlineExceeded), cerrdefs.IsUnavailable(err):
		return backend.Errorf(backend.KindUnavailable, "%s: the Docker Engine cannot be reached: %w", what, err)
	case cerrdefs.IsNotFound(err):
		return backend.Errorf(backend.KindNotFound, "%s: %w", what, err)
	case cerrdefs.IsInvalidArgument(err):
		return backend.Errorf(backend.KindInvalid, "%s: %w", what, err)
	}
	return backend.Errorf(backend.KindInternal, "%s: %w", what, err)
}
