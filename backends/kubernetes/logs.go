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
	for {
		// What the watch shows of the container as the stream opens: a followed log that ends with
		// nothing while it had not ended was asked too early (below).
		before, _ := b.cached(req.PodUID, ns)
		n, nodeFailed, err := b.streamLog(ctx, req, ns, rp.Name, o, w)
		if nodeFailed && before != nil && before.Status.Phase == v1.PodPending {
			// interLink's virtual kubelet shows a pod it has just taken as Pending and passes log requests
			// on at once to its backend, which answers 404 until the pod's create reaches it: for a pod
			// whose containers have not started, as a kubelet's "waiting to start", nothing is logged yet.
			err = nil
		}
		if err != nil || !o.Follow || n > 0 || ctx.Err() != nil || before == nil || containerEnded(before, req.ContainerName) {
			return err
		}
		// The remote node ended a followed log at once, empty, while the remote pod showed the container
		// not ended. A kubelet never does (it follows until the container ends); interLink's virtual
		// kubelet does, in front of a backend that has not started the container yet: its dispatcher
		// answers the empty log of a container that has not run. Follow again once the remote pod's
		// status moves on (the container started, or ended: then the log is read whole).
		b.metrics.followRetries.Inc()
		b.log.Info("a followed log ended empty while the remote container had not ended; following again once the remote pod's status changes",
			"pod_uid", req.PodUID, "namespace", req.Namespace, "name", req.PodName, "container", req.ContainerName, "remote_pod", ns+"/"+rp.Name)
		if !b.waitChange(ctx, req.PodUID, ns, before.ResourceVersion) {
			return nil // the remote pod is gone, or the caller left
		}
	}
}

// streamLog copies one log stream of the remote API server to w and returns how many bytes it wrote, and
// whether the remote node failed the request (the API server's InternalError: the kubelet, or the virtual
// kubelet, answered an error).
func (b *Backend) streamLog(ctx context.Context, req backend.LogRequest, ns, name string, o *v1.PodLogOptions, w io.Writer) (int64, bool, error) {
	start := time.Now()
	rc, err := b.cli.CoreV1().Pods(ns).GetLogs(name, o).Stream(ctx)
	b.metrics.observe("logs", start, err)
	if err != nil {
		if apierrors.IsBadRequest(err) && (req.Opts.Previous || strings.Contains(err.Error(), "not found")) {
			return 0, false, backend.NotFound("no log of container %s of pod %s: %v", req.ContainerName, req.PodName, err)
		}
		if apierrors.IsBadRequest(err) && strings.Contains(err.Error(), "waiting to start") {
			return 0, false, nil // nothing logged yet, as a container engine answers
		}
		return 0, apierrors.IsInternalError(err), b.apiError(err, "cannot read the log of container %s of the remote pod %s/%s", req.ContainerName, ns, name)
	}
	defer rc.Close()
	n, err := io.Copy(w, rc)
	if err != nil && ctx.Err() == nil {
		return n, false, backend.Unavailable("the log of container %s broke off: %v", req.ContainerName, err)
	}
	return n, false, nil
}

// containerEnded tells whether the remote pod shows the container terminated, or the pod ended.
func containerEnded(rp *v1.Pod, container string) bool {
	if rp.Status.Phase == v1.PodSucceeded || rp.Status.Phase == v1.PodFailed {
		return true
	}
	for _, s := range append(append([]v1.ContainerStatus{}, rp.Status.InitContainerStatuses...), rp.Status.ContainerStatuses...) {
		if s.Name == container {
			return oneState(s.State).Terminated != nil
		}
	}
	return false
}

// waitChange waits until the watch shows the remote pod of uid at another resource version than rv: true
// then, false when it is gone or ctx ends. It reads the informer's cache only: no request.
func (b *Backend) waitChange(ctx context.Context, uid, ns, rv string) bool {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-b.stop:
			return false
		case <-t.C:
		}
		rp, _ := b.cached(uid, ns)
		if rp == nil {
			return false
		}
		if rp.ResourceVersion != rv {
			return true
		}
	}
}

func hasContainer(p *v1.Pod, name string) bool {
	for _, c := range append(append([]v1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if c.Name == name {
			return true
		}
	}
	return false
}
