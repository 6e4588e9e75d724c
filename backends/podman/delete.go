package podman

import (
	"context"
	"path/filepath"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"

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
	// The pod's lock, taken once its launch and watch (which take it to update the record) have ended.
	unlock := b.podLocks.Lock(uid)
	defer unlock()
	// Held while the pod goes, so that the launch of another process on this data directory (an older one
	// still alive) makes nothing for it meanwhile, and then finds it gone.
	if unlockDir, err := pod.LockDir(b.podDir(uid)); err == nil {
		defer unlockDir()
	}
	grace := req.GracePeriod
	if grace < 0 {
		grace = 0
	}
	b.mu.RLock()
	r := b.records[uid]
	launched := r != nil && r.Launched
	b.mu.RUnlock()
	// One list of the pod's containers (its infra container included) names its Podman pods too: the stop
	// and the removal ask nothing more of what exists. The live view's, when it holds every container of
	// the pod (see complete); else the engine's.
	ctrs, ok := b.view.fresh(uid)
	if !ok || !launched || !complete(r.Pod, ctrs) {
		var err error
		if ctrs, err = b.api.ContainerList(ctx, b.podLabels(uid)); err != nil {
			return engineError(err)
		}
	}
	if err := b.stopPod(ctx, uid, ctrs, grace); err != nil {
		return engineError(err)
	}
	// Only a pod with a memory emptyDir has volumes; an unknown pod may have had any.
	vols := r == nil || slices.ContainsFunc(r.Pod.Spec.Volumes, func(v v1.Volume) bool {
		return v.EmptyDir != nil && v.EmptyDir.Medium == v1.StorageMediumMemory
	})
	if err := b.removeEngineObjects(ctx, uid, ctrs, vols); err != nil {
		return engineError(err)
	}
	b.mu.Lock()
	delete(b.records, uid)
	b.mu.Unlock()
	b.view.forget(uid)
	if err := pod.RemoveDir(b.podDir(uid)); err != nil {
		return backend.Errorf(backend.KindInternal, "the pod's containers are removed but its files in %s are not: %v", b.podDir(uid), err)
	}
	b.podLog(req.Pod).Info("pod deleted")
	return nil
}

// complete tells whether ctrs, the containers of pod p as the live view holds them (fresh), once its launch
// is over (Delete stopped it) and had made every container (Launched), are all p has on the engine: every
// container of the pod is there, so the view's list was taken after the last of them was made (the pre-exec
// helper comes before), and nothing makes one since. Without that check, the event of the launch's last
// create still on its way would leave a container out.
func complete(p *v1.Pod, ctrs []libpod.ListContainer) bool {
	have := byName(ctrs)
	for _, c := range allContainers(p) {
		if _, ok := have[c.Name]; !ok {
			return false
		}
	}
	return true
}

// stopPod stops every Podman pod of uid's containers ctrs: each container gets its stop signal, SIGKILL
// after grace.
func (b *Backend) stopPod(ctx context.Context, uid string, ctrs []libpod.ListContainer, grace time.Duration) error {
	pods := podIDs(ctrs)
	var err error
	secs := int(grace.Round(time.Second) / time.Second)
	// The shims kill what outlives this stop's grace period, which may be shorter than the pod's.
	if err := shim.WriteStopGrace(filepath.Join(b.podDir(uid), "shim"), grace); err != nil {
		log := b.log.With("pod_uid", uid)
		if len(ctrs) > 0 {
			log = b.labelLog(ctrs[0].Labels) // the pod's names too
		}
		log.Warn("the shims stop with the pod's grace period", "err", err)
	}
	for _, id := range pods {
		if secs == 0 {
			// No grace: Podman would read a zero stop timeout as its default.
			err = b.api.PodKill(ctx, id, "KILL")
		} else {
			// The shims enforce the grace period; the engine kills only a shim that outlives it.
			err = b.api.PodStop(ctx, id, secs+shimStopMargin)
		}
		if err != nil && !libpod.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// podIDs are the Podman pods of containers ctrs, in the order first seen.
func podIDs(ctrs []libpod.ListContainer) []string {
	var out []string
	for _, c := range ctrs {
		if c.Pod != "" && !slices.Contains(out, c.Pod) {
			out = append(out, c.Pod)
		}
	}
	return out
}

// removeEngineObjects removes, by label, the containers (with their anonymous volumes), pods and volumes
// this instance made for pod uid. ctrs, when not nil, is a list of the pod's containers just made (so the
// first pass asks for none); vols is false when the pod has no volume to look for.
//
// The volumes go last and without force: a forced volume removal takes the volume's lock and then the lock
// of each container still using it, the reverse of the order every container operation takes them in, and on
// Podman 4.3 it deadlocks with the cleanup conmon runs when such a container exits (seen in the lab: every
// later call touching either object hangs until the service restarts). A volume still in use is a container
// not removed yet: the containers are removed again and the volume retried.
func (b *Backend) removeEngineObjects(ctx context.Context, uid string, ctrs []libpod.ListContainer, vols bool) error {
	labels := b.podLabels(uid)
	for attempt := 0; ; attempt++ {
		if err := b.removeContainersAndPods(ctx, labels, ctrs); err != nil {
			return err
		}
		ctrs = nil
		if !vols {
			return nil
		}
		have, err := b.api.VolumeList(ctx, labels)
		if err != nil {
			return err
		}
		var inUse error
		for _, v := range have {
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

// removeContainersAndPods removes the pod's containers, then its Podman pods: those of ctrs, or of a list
// of the labels when ctrs is nil. Its Podman pods are listed too when ctrs names none: a launch stopped
// between making the Podman pod and its first container leaves a pod that no container names.
func (b *Backend) removeContainersAndPods(ctx context.Context, labels map[string]string, ctrs []libpod.ListContainer) error {
	listed := ctrs == nil
	if listed {
		var err error
		if ctrs, err = b.api.ContainerList(ctx, labels); err != nil {
			return err
		}
	}
	if listed || len(podIDs(ctrs)) == 0 {
		pods, err := b.api.PodList(ctx, labels)
		if err != nil {
			return err
		}
		for _, p := range pods {
			// A Podman pod without containers lists none: found by its own list.
			ctrs = append(ctrs, libpod.ListContainer{Pod: p.ID, IsInfra: true})
		}
	}
	for _, c := range ctrs {
		if c.IsInfra {
			continue // goes with its pod
		}
		if err := b.api.ContainerRemove(ctx, c.ID, true); err != nil {
			return err
		}
	}
	for _, id := range podIDs(ctrs) {
		if err := b.api.PodRemove(ctx, id, true); err != nil && !libpod.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// podLabels select what this instance made for pod uid.
func (b *Backend) podLabels(uid string) map[string]string {
	return map[string]string{pod.LabelPodUID: uid, pod.LabelInstance: b.env.Instance, pod.LabelBackend: b.env.Name}
}
