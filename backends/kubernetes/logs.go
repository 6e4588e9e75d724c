package kubernetes

import (
	"context"
	"io"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Logs streams one container's log from the remote API server, every option passed on as kubectl would.
func (b *Backend) Logs(ctx context.Context, req backend.LogRequest, w io.Writer) error {
	if err := pod.CheckUID(req.PodUID); err != nil {
		return err
	}
	if err := pod.CheckLogOptions(req.Opts); err != nil {
		return err
	}
	rp, ns := b.cached(req.PodUID, b.remoteNS(req.Namespace, req.RemoteID))
	if rp == nil && b.justCreated(req.PodUID) {
		// Created a moment ago, not shown by the watch yet: ask once.
		ns = b.remoteNS(req.Namespace, req.RemoteID)
		if ns == "" {
			ns = b.cfg.Namespace
		}
		start := time.Now()
		got, err := b.cli.CoreV1().Pods(ns).Get(ctx, remoteName(req.PodUID), metav1.GetOptions{})
		b.metrics.observe("get_pod", start, err)
		if err == nil && got.Annotations[annotationUID] == req.PodUID {
			rp = got
		}
	}
	if rp == nil {
		return backend.NotFound("the remote cluster has no pod for UID %s", req.PodUID)
	}
	if !hasContainer(rp, req.ContainerName) {
		return backend.NotFound("pod %s has no container %s", req.PodName, pod.Quote(req.ContainerName))
	}
	o := &v1.PodLogOptions{Container: req.ContainerName, Follow: req.Opts.Follow, Previous: req.Opts.Previous,
		Timestamps: req.Opts.Timestamps}
	if req.Opts.Tail > 0 {
		n := int64(req.Opts.Tail)
		o.TailLines = &n
	}
	if req.Opts.LimitBytes > 0 {
		n := int64(req.Opts.LimitBytes)
		o.LimitBytes = &n
	}
	if req.Opts.SinceSeconds > 0 {
		n := int64(req.Opts.SinceSeconds)
		o.SinceSeconds = &n
	} else if !req.Opts.SinceTime.IsZero() {
		t := metav1.NewTime(req.Opts.SinceTime)
		o.SinceTime = &t
	}
	start := time.Now()
	rc, err := b.cli.CoreV1().Pods(ns).GetLogs(rp.Name, o).Stream(ctx)
	b.metrics.observe("logs", start, err)
	if err != nil {
		if apierrors.IsBadRequest(err) && (req.Opts.Previous || strings.Contains(err.Error(), "not found")) {
			return backend.NotFound("no log of container %s of pod %s: %v", req.ContainerName, req.PodName, err)
		}
		if apierrors.IsBadRequest(err) && strings.Contains(err.Error(), "waiting to start") {
			return nil // nothing logged yet, as a container engine answers
		}
		return b.apiError(err, "cannot read the log of container %s of the remote pod %s/%s", req.ContainerName, ns, rp.Name)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil && ctx.Err() == nil {
		return backend.Unavailable("the log of container %s broke off: %v", req.ContainerName, err)
	}
	return nil
}

func hasContainer(p *v1.Pod, name string) bool {
	for _, c := range append(append([]v1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if c.Name == name {
			return true
		}
	}
	return false
}
