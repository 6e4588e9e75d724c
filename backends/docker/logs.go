package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Logs writes one container's log, stdout and stderr interleaved in the order the engine recorded them.
// Previous reads the run before the current one (after a restart); Follow streams until the container
// stops or ctx ends.
func (b *Backend) Logs(ctx context.Context, req backend.LogRequest, w io.Writer) error {
	o := req.Opts
	if err := pod.CheckLogOptions(o); err != nil {
		return err
	}
	if req.PodUID == "" || req.ContainerName == "" {
		return backend.Invalid("a log request needs the pod UID and the container name")
	}
	if err := pod.CheckUID(req.PodUID); err != nil {
		return err
	}
	pc, err := b.viewPod(ctx, req.PodUID)
	if err != nil {
		return engineError("cannot find the container", err)
	}
	var runs []container.Summary
	if pc != nil {
		runs = pc.runs[req.ContainerName]
	}
	if len(runs) == 0 { // the view may not have taken in the event of a run just made: the engine says
		if pc, err = b.listPod(ctx, req.PodUID); err != nil {
			return engineError("cannot find the container", err)
		}
		runs = pc.runs[req.ContainerName]
	}
	if len(runs) == 0 {
		// A container of a known pod that has not run yet (waiting for its image or its init containers,
		// or never to run after an init failure) has an empty log, as kubectl logs readers expect.
		if rec, err := b.readRecord(req.PodUID); err == nil && pod.FindContainer(rec.Pod, req.ContainerName) != nil {
			return nil
		}
		return backend.NotFound("container %q of pod %s/%s has not been created (yet) on backend %q",
			req.ContainerName, req.Namespace, req.PodName, b.env.Name)
	}
	target := runs[len(runs)-1]
	if o.Previous {
		if len(runs) < 2 {
			return backend.NotFound("previous terminated container %q of pod %s/%s not found: it has not been restarted",
				req.ContainerName, req.Namespace, req.PodName)
		}
		target = runs[len(runs)-2]
	}
	lo := container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: o.Timestamps, Follow: o.Follow && !o.Previous, Tail: "all"}
	if o.Tail > 0 {
		lo.Tail = strconv.Itoa(o.Tail)
	}
	if since := pod.LogSince(o, time.Now()); !since.IsZero() {
		if o.SinceSeconds > 0 {
			since = since.Truncate(time.Second) // a count of seconds asks for whole seconds
		}
		lo.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	rc, err := b.cli.ContainerLogs(ctx, target.ID, lo)
	if err != nil {
		return engineError("cannot read the container's log", err)
	}
	defer rc.Close()
	dst := w
	if o.LimitBytes > 0 {
		dst = &limitWriter{w: w, left: o.LimitBytes}
	}
	_, err = stdcopy.StdCopy(dst, dst, rc)
	switch {
	case err == nil, errors.Is(err, errLimitReached), ctx.Err() != nil:
		return nil
	}
	return backend.Errorf(backend.KindInternal, "reading the container's log failed: %w", err)
}

var errLimitReached = errors.New("byte limit reached")

// limitWriter passes on at most left bytes, then stops the copy.
type limitWriter struct {
	w    io.Writer
	left int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.left {
		n, err := l.w.Write(p[:l.left])
		l.left -= n
		if err != nil {
			return n, err
		}
		return n, errLimitReached
	}
	n, err := l.w.Write(p)
	l.left -= n
	if err == nil && l.left == 0 {
		return n, errLimitReached
	}
	return n, err
}
