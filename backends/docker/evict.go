package docker

import (
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// evict stops every running container of the pod within its grace period and records why, as the kubelet
// evicts a pod whose emptyDir exceeds its sizeLimit: the pod ends Failed and is not restarted.
func (r *runner) evict(pc *podContainers, message string) {
	r.log.Warn("evicting pod", "reason", message)
	ev := &pod.Eviction{Message: message, Time: time.Now().UTC()}
	secs := stopSeconds(pod.GracePeriod(r.rec.Pod).Seconds())
	var wg sync.WaitGroup
	for _, runs := range pc.runs {
		last := runs[len(runs)-1]
		if last.State != "running" {
			continue
		}
		ev.Killed = append(ev.Killed, last.ID)
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			_ = r.b.cli.ContainerStop(r.ctx, id, container.StopOptions{Timeout: &secs})
		}(last.ID)
	}
	// Recorded first, so that the containers stopping now are never restarted, even after a crash.
	r.b.setEviction(r.rec.Pod, ev)
	wg.Wait()
}

// applyEviction rewrites the statuses of an evicted pod (see pod.Eviction.Apply); the eviction names the
// containers it killed by their Docker id.
func applyEviction(statuses []v1.ContainerStatus, ev *pod.Eviction) {
	ev.Apply(statuses, func(s *v1.ContainerStatus) string { return strings.TrimPrefix(s.ContainerID, "docker://") })
}
