package podman

import (
	"context"
	"path/filepath"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
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
	if err := pod.CheckUID(uid); err != nil {
		return err
	}
	b.stopWatch(uid)
	b.stopLaunch(uid)
	// Held while the pod goes, so that the launch of another process on this data directory (an older one
	// still alive) makes nothing for it meanwhile, and then finds it gone.
	if unlockDir, err := pod.LockDir(b.podDir(uid)); err == nil {
		defer unlockDir()
	}
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
	if err := pod.RemoveDir(b.podDir(uid)); err != nil {
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
	// The shims kill what outlives this stop's grace period, which may be shorter than the pod's.
	if err := shim.WriteStopGrace(filepath.Join(b.podDir(uid), "shim"), grace); err != nil {
		b.log.Warn("the shims stop with the pod's grace period", "pod_uid", uid, "err", err)
	}
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
//
// The volumes go last and without force: a forced volume removal takes the volume's lock and then the lock
// of each container still using it, the reverse of the order every container operation takes them in, and on
// Podman 4.3 it deadlocks with the cleanup conmon runs when such a container exits (seen in the lab: every
// later call touching either object hangs until the service restarts). A volume still in use is a container
// not removed yet: the containers are removed again and the volume retried.
func (b *Backend) removeEngineObjects(ctx context.Context, uid string) error {
	labels := b.podLabels(uid)
	for attempt := 0; ; attempt++ {
		if err := b.removeContainersAndPods(ctx, labels); err != nil {
			return err
		}
		vols, err := b.api.VolumeList(ctx, labels)
		if err != nil {
			return err
		}
		var inUse error
		for _, v := range vols {
			if err := b.api.VolumeRemove(ctx, v.Name, false); libpod.IsConflict(err) {
				inUse = err
			} else if err != nil {
				return err
			}
		}
		if inUse == nil {
			return nil
		}
		if attempt == 4 {
			return inUse
		}
		select {
		case <-ctx.Done():
			return inUse
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
}

func (b *Backend) removeContainersAndPods(ctx context.Context, labels map[string]string) error {
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
	return nil
}

// podLabels select what this instance made for pod uid.
func (b *Backend) podLabels(uid string) map[string]string {
	return map[string]string{pod.LabelPodUID: uid, pod.LabelInstance: b.env.Instance, pod.LabelBackend: b.env.Name}
}
