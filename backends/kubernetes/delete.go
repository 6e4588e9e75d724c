package kubernetes

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// goneWait is how long Delete waits, beyond the grace period, for the remote pod to be gone.
const goneWait = time.Minute

// Delete deletes the remote pod with the grace period, its owned ConfigMaps and Secrets going with it (the
// remote garbage collector), and returns once the remote cluster no longer has it. An unknown pod succeeds.
func (b *Backend) Delete(ctx context.Context, req backend.DeleteRequest) error {
	if req.Pod == nil {
		return backend.Invalid("no pod was given")
	}
	uid := string(req.Pod.UID)
	if err := pod.CheckUID(uid); err != nil {
		return err
	}
	unlock := b.lock(uid)
	defer unlock()
	name := remoteName(uid)
	namespaces := b.namespaces()
	if ns := b.remoteNS(req.Pod.Namespace, req.RemoteID); ns != "" {
		namespaces = []string{ns}
	} else if _, ns := b.cached(uid, ""); ns != "" {
		namespaces = []string{ns}
	}
	grace := int64(req.GracePeriod / time.Second)
	if grace < 1 {
		grace = 1 // 0 would be a forced deletion, which does not wait for the containers to stop
	}
	bg := metav1.DeletePropagationBackground
	for _, ns := range namespaces {
		start := time.Now()
		err := b.cli.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace,
			PropagationPolicy: &bg})
		if apierrors.IsNotFound(err) {
			err = nil
			b.metrics.observe("delete_pod", start, nil)
			continue
		}
		b.metrics.observe("delete_pod", start, err)
		if err != nil {
			return b.apiError(err, "cannot delete the remote pod %s/%s", ns, name)
		}
		if err := b.waitGone(ctx, ns, name, time.Duration(grace)*time.Second+goneWait); err != nil {
			return err
		}
	}
	b.seen(uid)
	return nil
}

// waitGone waits until the watch no longer has the remote pod.
func (b *Backend) waitGone(ctx context.Context, ns, name string, limit time.Duration) error {
	inf := b.informers[ns]
	if inf == nil {
		return nil
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, limit, true, func(context.Context) (bool, error) {
		_, found, err := inf.GetIndexer().GetByKey(ns + "/" + name)
		return err == nil && !found, nil
	})
	if err != nil {
		return backend.Unavailable("the remote pod %s/%s was deleted and is still there after %s; deleting it again waits more", ns, name, limit)
	}
	return nil
}
