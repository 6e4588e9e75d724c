package podman

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// limitedDirs returns the disk emptyDirs of p that have a sizeLimit.
func (b *Backend) limitedDirs(p *v1.Pod) []*pod.Volume {
	return pod.SizeLimitedDirs(pod.VolumesOnDisk(p, b.podDir(string(p.UID))))
}

// startWatch measures the pod's sized emptyDirs every usageInterval while it lives, and evicts it when one
// is over its limit. Nothing is started for a pod without such a volume.
func (b *Backend) startWatch(r *record) {
	dirs := b.limitedDirs(r.Pod)
	if len(dirs) == 0 || r.Eviction != nil {
		return
	}
	uid := string(r.Pod.UID)
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan struct{})
	b.mu.Lock()
	b.watches[uid] = launchHandle{cancel: cancel, done: done}
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(done)
		defer cancel()
		tick := time.NewTicker(pod.UsageInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if msg := pod.OverLimit(dirs); msg != "" {
				b.evict(ctx, r, msg)
				return
			}
		}
	}()
}

// stopWatch stops the usage watch of uid, if one runs, and waits for it to end.
func (b *Backend) stopWatch(uid string) {
	b.mu.Lock()
	h, ok := b.watches[uid]
	delete(b.watches, uid)
	b.mu.Unlock()
	if ok {
		h.cancel()
		<-h.done
	}
}

// evict ends the pod as the kubelet evicts one whose emptyDir exceeds its sizeLimit: its launch stops (no
// container starts any more), the eviction is recorded (so that Status reports it, also after a restart),
// and every running container is stopped within the pod's grace period. The pod ends Failed.
func (b *Backend) evict(ctx context.Context, r *record, message string) {
	uid := string(r.Pod.UID)
	b.podLog(r.Pod).Warn("evicting pod", "reason", message)
	b.stopLaunch(uid)
	ctrs, err := b.api.ContainerList(ctx, b.podLabels(uid))
	if err != nil {
		b.podLog(r.Pod).Error("cannot list the containers of a pod to evict", "err", err)
	}
	ev := &pod.Eviction{Message: message, Time: time.Now().UTC()}
	for _, c := range ctrs {
		if !c.IsInfra && c.State == "running" {
			ev.Killed = append(ev.Killed, c.Labels[pod.LabelContainer])
		}
	}
	b.update(r, func(r *record) { r.Eviction = ev })
	secs := int(pod.GracePeriod(r.Pod).Seconds()) + shimStopMargin
	var wg sync.WaitGroup
	for _, c := range ctrs {
		if c.IsInfra || c.State != "running" {
			continue
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			if err := b.api.ContainerStop(ctx, id, secs); err != nil {
				b.podLog(r.Pod).Error("cannot stop a container of an evicted pod", "container", id, "err", err)
			}
		}(c.ID)
	}
	wg.Wait()
}

// applyEviction rewrites the statuses of an evicted pod (see pod.Eviction.Apply); the eviction names the
// containers it stopped by their name in the pod.
func applyEviction(statuses []v1.ContainerStatus, ev *pod.Eviction) {
	ev.Apply(statuses, func(s *v1.ContainerStatus) string { return s.Name })
}
