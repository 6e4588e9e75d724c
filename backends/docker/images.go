package docker

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
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
// waiting reason (ErrImagePull, ErrImageNeverPull) and a message with the engine's words. An image found
// present less than imageConfigAge ago is taken as present still: the launches of a burst of pods of one
// image cost one inspect, not one each (an image removed meanwhile fails the create, which forgets it).
func (b *Backend) ensureImage(ctx context.Context, c *v1.Container) (reason, message string) {
	policy := b.pullPolicy(c)
	if policy != v1.PullAlways {
		_, err := b.inspectImage(ctx, c.Image, imageConfigAge)
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
	err := b.pull(ctx, c.Image)
	b.images.forget(c.Image) // the tag may name another image now
	if err != nil {
		msg := strings.TrimSpace(err.Error())
		return pod.ReasonErrImagePull, fmt.Sprintf("failed to pull image %q: %s", c.Image, msg)
	}
	return "", ""
}

// imageConfigAge is how long an image inspect serves the launches that follow it: ensureImage inspects (or
// pulls) the image of a run, then its command line and user are read from the same answer, and the other
// launches of that image meanwhile take it from there too.
const imageConfigAge = 10 * time.Second

// imageCache keeps the last inspect of each image reference for the launch that follows it.
type imageCache struct {
	mu      sync.Mutex
	entries map[string]imageEntry
}

type imageEntry struct {
	at   time.Time
	info image.InspectResponse
}

func (c *imageCache) forget(ref string) {
	c.mu.Lock()
	delete(c.entries, ref)
	c.mu.Unlock()
}

// inspectImage inspects ref, or answers from an inspect of it made less than maxAge ago (0: always asks).
func (b *Backend) inspectImage(ctx context.Context, ref string, maxAge time.Duration) (image.InspectResponse, error) {
	b.images.mu.Lock()
	e, ok := b.images.entries[ref]
	b.images.mu.Unlock()
	if ok && time.Since(e.at) < maxAge {
		return e.info, nil
	}
	start := time.Now()
	info, err := b.cli.ImageInspect(ctx, ref)
	b.metrics.observe("image_inspect", start, err)
	b.images.mu.Lock()
	defer b.images.mu.Unlock()
	if b.images.entries == nil {
		b.images.entries = map[string]imageEntry{}
	}
	if err != nil {
		delete(b.images.entries, ref)
		return info, err
	}
	if len(b.images.entries) > 256 { // a few images serve most pods; never grow without bound
		clear(b.images.entries)
	}
	b.images.entries[ref] = imageEntry{at: start, info: info}
	return info, nil
}
