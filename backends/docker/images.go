package docker

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// pull pulls ref and waits for the end of the pull. The engine reports most pull failures inside the
// progress stream, not as an HTTP error; both are returned with the engine's own message.
func (b *Backend) pull(ctx context.Context, ref string) (err error) {
	start := time.Now()
	defer func() {
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		b.metrics.pulls.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	}()
	rc, err := b.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	return jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil)
}

// pullPolicy is the container's pull policy, with the config's default for containers that have none.
func (b *Backend) pullPolicy(c *v1.Container) v1.PullPolicy {
	if c.ImagePullPolicy == "" && b.cfg.DefaultPullPolicy != "" {
		return b.cfg.DefaultPullPolicy
	}
	return pod.PullPolicy(c)
}

// ensureImage makes c's image present according to its pull policy. On failure it returns the kubelet's
// waiting reason (ErrImagePull, ErrImageNeverPull) and a message with the engine's words.
func (b *Backend) ensureImage(ctx context.Context, c *v1.Container) (reason, message string) {
	policy := b.pullPolicy(c)
	if policy != v1.PullAlways {
		start := time.Now()
		_, err := b.cli.ImageInspect(ctx, c.Image)
		b.metrics.observe("image_inspect", start, err)
		if err == nil {
			return "", ""
		}
		if !cerrdefs.IsNotFound(err) {
			return pod.ReasonErrImagePull, fmt.Sprintf("cannot inspect image %q: %v", c.Image, err)
		}
		if policy == v1.PullNever {
			return pod.ReasonErrImageNeverPull, fmt.Sprintf("container image %q is not present with pull policy of Never", c.Image)
		}
	}
	if err := b.pull(ctx, c.Image); err != nil {
		msg := strings.TrimSpace(err.Error())
		return pod.ReasonErrImagePull, fmt.Sprintf("failed to pull image %q: %s", c.Image, msg)
	}
	return "", ""
}
