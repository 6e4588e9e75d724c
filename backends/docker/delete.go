package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// Delete stops the pod's containers gracefully (the image's stop signal, SIGTERM by default, then SIGKILL
// after the grace period), then removes them, the pause container, the pod's volumes and its directory.
// Deleting an unknown pod succeeds.
func (b *Backend) Delete(ctx context.Context, req backend.DeleteRequest) error {
	uid := ""
	if req.Pod != nil {
		uid = string(req.Pod.UID)
	}
	if uid == "" && req.RemoteID != "" {
		uid = b.podOfContainer(ctx, req.RemoteID)
	}
	if uid == "" {
		return nil // nothing names a pod of this backend
	}
	if err := pod.CheckUID(uid); err != nil {
		return err
	}
	grace := req.GracePeriod
	if grace <= 0 && req.Pod != nil {
		grace = pod.GracePeriod(req.Pod)
	}
	unlock := b.lock(uid)
	defer unlock()
	// Every log line about a pod names it; a delete by remote id alone learns the name from the record,
	// read before the pod's directory goes.
	var namespace, name string
	if req.Pod != nil {
		namespace, name = req.Pod.Namespace, req.Pod.Name
	}
	if name == "" {
		if rec, err := b.readRecord(uid); err == nil && rec.Pod != nil {
			namespace, name = rec.Pod.Namespace, rec.Pod.Name
		}
	}
	b.stopRunner(uid)
	// Held while the pod goes, so that the runner of another process on this data directory (an older one
	// still alive) makes nothing for it meanwhile, and then finds it gone.
	if unlockDir, err := pod.LockDir(b.podDir(uid)); err == nil {
		defer unlockDir()
	}
	ref := podRef{uid: uid, namespace: namespace, name: name}
	if err := b.removePod(ctx, ref, grace); err != nil {
		return err
	}
	b.podLog(ref).Info("pod deleted", "grace", grace)
	return nil
}

// podOfContainer is the UID of the pod of this backend whose container id is, "" when it is none of
// its pods'; the view answers when it knows the container.
func (b *Backend) podOfContainer(ctx context.Context, id string) string {
	if c, ok := b.view.byID(id, time.Now(), b.cfg.StatusMaxAge.D()); ok {
		return c.Labels[pod.LabelPodUID]
	}
	in, err := b.cli.ContainerInspect(ctx, id)
	if err != nil || in.Config == nil || in.Config.Labels[pod.LabelBackend] != b.env.Name ||
		in.Config.Labels[pod.LabelInstance] != b.env.Instance {
		return ""
	}
	return in.Config.Labels[pod.LabelPodUID]
}

// removePod removes everything the backend made for pod ref, stopping its containers with grace first.
func (b *Backend) removePod(ctx context.Context, ref podRef, grace time.Duration) error {
	uid := ref.uid
	pc, err := b.listPod(ctx, uid)
	if err != nil {
		return engineError("cannot list the pod's containers", err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	keep := func(what string, err error) {
		if err != nil && !cerrdefs.IsNotFound(err) {
			mu.Lock()
			errs = append(errs, engineError(what, err))
			mu.Unlock()
		}
	}
	// The shims kill what outlives this stop's grace period, which may be shorter than the pod's.
	if err := shim.WriteStopGrace(filepath.Join(b.podDir(uid), "shim"), grace); err != nil {
		b.podLog(ref).Warn("the shims stop with the pod's grace period", "err", err)
	}
	// Every workload container gets its stop signal at once, as the kubelet does, and is removed as soon as
	// it stopped; the pause, whose namespaces they joined, goes once they all stopped (a stopped container
	// needs them no more), beside the removals still under way.
	var stopped sync.WaitGroup
	for _, runs := range pc.runs {
		for _, run := range runs {
			wg.Add(1)
			stopped.Add(1)
			go func(id string, running bool) {
				defer wg.Done()
				if running {
					// The shim in the container runs preStop and sends the stop signal on SIGTERM, and
					// kills the command when the grace period is over.
					secs := stopSeconds(grace.Seconds())
					start := time.Now()
					err := b.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs})
					b.metrics.observe("container_stop", start, err)
					keep("cannot stop container "+shortID(id), err)
				}
				stopped.Done()
				keep("cannot remove container "+shortID(id), b.removeContainer(ctx, id))
			}(run.ID, run.State == "running")
		}
	}
	if pc.pause != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopped.Wait()
			keep("cannot remove the pause container", b.removeContainer(ctx, pc.pause.ID))
		}()
	}
	wg.Wait()
	if b.mayHaveVolumes(uid) {
		vols, err := b.cli.VolumeList(ctx, volume.ListOptions{Filters: b.ownFilter(pod.LabelPodUID, uid)})
		keep("cannot list the pod's volumes", err)
		for _, v := range vols.Volumes {
			keep("cannot remove volume "+v.Name, b.cli.VolumeRemove(ctx, v.Name, true))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := pod.RemoveDir(b.podDir(uid)); err != nil {
		return backend.Errorf(backend.KindInternal, "cannot remove the pod directory: %w", err)
	}
	b.view.forget(uid)
	return nil
}

// removeContainer force-removes container id and returns once it is gone. A removal the engine already has
// under way (a supervisor's, whose request was cancelled when the delete stopped it: the engine goes on with
// it) is waited for rather than reported.
func (b *Backend) removeContainer(ctx context.Context, id string) error {
	err := b.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "already in progress") {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, removalWait)
	defer cancel()
	for {
		if _, err := b.cli.ContainerInspect(wctx, id); cerrdefs.IsNotFound(err) {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("container %s was still being removed by the engine after %s", shortID(id), removalWait)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// removalWait bounds the wait for a removal the engine already has under way.
const removalWait = 30 * time.Second

// mayHaveVolumes tells whether pod uid may have Docker volumes: its record is unreadable, or names a Memory
// emptyDir (the only volumes the backend makes).
func (b *Backend) mayHaveVolumes(uid string) bool {
	rec, err := b.readRecord(uid)
	if err != nil {
		return true
	}
	for _, v := range rec.Pod.Spec.Volumes {
		if v.EmptyDir != nil && v.EmptyDir.Medium == v1.StorageMediumMemory {
			return true
		}
	}
	return false
}

// countPods counts the pods recorded in the data directory.
func (b *Backend) countPods() int {
	entries, err := os.ReadDir(fmt.Sprintf("%s/pods", b.dataDir))
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() {
			n++
		}
	}
	return n
}
