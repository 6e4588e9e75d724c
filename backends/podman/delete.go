package podman

import (
	"context"
	"os"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Delete stops the pod's launch, stops its containers gracefully (their stop signal, then SIGKILL after the
// grace period), and removes its containers, the Podman pod with its infra container, its tmpfs volumes and
// its files. Only objects labelled with this instance and the pod's UID are touched; an unknown pod is not an
// error.
func (b *Backend) Delete(ctx context.Context, req backend.DeleteRequest) error {
	if req.Pod == nil {
		return backend.Invalid("the delete request has no pod")
	}
	uid := string(req.Pod.UID)
	if err := pod.ValidUID(uid); err != nil {
		return backend.Invalid("metadata.uid: %v", err)
	}
	b.stopWatch(uid)
	b.stopLaunch(uid)
	grace := req.GracePeriod
	if grace < 0 {
		grace = 0
	}
	if err := b.stopPod(ctx, uid, grace); err != nil {
		return engineError(err)
	}
	if err := b.removeEngineObjects(ctx, uid); err != nil {
		return engineError(err)
	}
	b.mu.Lock()
	delete(b.records, uid)
	b.mu.Unlock()
	if err := os.RemoveAll(b.podDir(uid)); err != nil {
		return backend.Errorf(backend.KindInternal, "the pod's containers are removed but its files in %s are not: %v", b.podDir(uid), err)
	}
	b.podLog(req.Pod).Info("pod deleted")
	return nil
}

// stopPod stops every Podman pod of uid: each container gets its stop signal, SIGKILL after grace.
func (b *Backend) stopPod(ctx context.Context, uid string, grace time.Duration) error {
	pods, err := b.api.PodList(ctx, b.podLabels(uid))
	if err != nil {
		return err
	}
	secs := int(grace.Round(time.Second) / time.Second)
	for _, p := range pods {
		if secs == 0 {
			// No grace: Podman would read a zero stop timeout as its default.
			err = b.api.PodKill(ctx, p.ID, "KILL")
		} else {
			// The shims enforce the grace period; the engine kills only a shim that outlives it.
			err = b.api.PodStop(ctx, p.ID, secs+shimStopMargin)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// removeEngineObjects removes, by label, the containers (with their anonymous volumes), pods and volumes
// this instance made for pod uid.
func (b *Backend) removeEngineObjects(ctx context.Context, uid string) error {
	labels := b.podLabels(uid)
	ctrs, err := b.api.ContainerList(ctx, labels)
	if err != nil {
		return err
	}
	for _, c := range ctrs {
		if c.IsInfra {
			continue // goes with its pod
		}
		if err := b.api.ContainerRemove(ctx, c.ID, true); err != nil {
			return err
		}
	}
	pods, err := b.api.PodList(ctx, labels)
	if err != nil {
		return err
	}
	for _, p := range pods {
		if err := b.api.PodRemove(ctx, p.ID, true); err != nil {
			return err
		}
	}
	vols, err := b.api.VolumeList(ctx, labels)
	if err != nil {
		return err
	}
	for _, v := range vols {
		if err := b.api.VolumeRemove(ctx, v.Name, true); err != nil {
			return err
		}
	}
	return nil
}

// podLabels select what this instance made for pod uid.
func (b *Backend) podLabels(uid string) map[string]string {
	return map[string]string{pod.LabelPodUID: uid, pod.LabelInstance: b.env.Instance, pod.LabelBackend: b.env.Name}
}
