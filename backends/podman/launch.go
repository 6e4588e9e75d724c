package podman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// startLaunch runs launch for r in the background; prep is what Create prepared, nil for a launch resumed
// by a new process.
func (b *Backend) startLaunch(r *record, prep *prepared) {
	uid := string(r.Pod.UID)
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan struct{})
	b.mu.Lock()
	b.running[uid] = launchHandle{cancel: cancel, done: done}
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(done)
		defer cancel()
		b.launch(ctx, r, prep)
		b.mu.Lock()
		if h, ok := b.running[uid]; ok && h.done == done {
			delete(b.running, uid)
		}
		b.mu.Unlock()
	}()
}

type launchHandle struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// stopLaunch cancels the launch of uid, if one runs, and waits for it to end.
func (b *Backend) stopLaunch(uid string) {
	b.mu.Lock()
	h, ok := b.running[uid]
	delete(b.running, uid)
	b.mu.Unlock()
	if ok {
		h.cancel()
		<-h.done
	}
}

// launch brings the pod up: images, the Podman pod, its containers, the init containers one after another
// (each to completion, detected by its died event or the engine's wait), then the regular containers
// together. Every step is idempotent, so a backend restarted halfway runs it again from the top and only
// does what is missing.
// An engine that cannot be reached is waited for; any other failure is recorded on the container it
// concerns, and a Podman pod left half-made is removed.
func (b *Backend) launch(ctx context.Context, r *record, prep *prepared) {
	log := b.podLog(r.Pod)
	if prep == nil {
		var err error
		if prep, err = b.prepare(r, false); err != nil {
			for _, c := range allContainers(r.Pod) {
				b.fail(r, c.Name, failure{Reason: pod.ReasonCreateContainerError, Message: err.Error()})
			}
			return
		}
	}
	// A launch Create started asks nothing of what exists (nothing can, the pod being new); a conflict
	// (something of the pod's name found on the engine after all) or any retry checks everything.
	fresh := prep != nil
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		err := b.launchOnce(ctx, r, prep, fresh)
		if err == nil || ctx.Err() != nil {
			return
		}
		if errors.Is(err, errExists) && fresh {
			fresh = false
			delay = time.Second / 2
			continue
		}
		if errors.Is(err, errNotRecorded) {
			log.Info("the pod is no longer recorded (deleted); its launch ends and nothing is re-created for it")
			return
		}
		var u *libpod.UnavailableError
		if !errors.As(err, &u) {
			// Never silent: the containers not yet made show the reason in Status.
			log.Error("pod launch failed", "err", err)
			for _, c := range allContainers(r.Pod) {
				b.fail(r, c.Name, failure{Reason: pod.ReasonCreateContainerError, Message: "the pod could not be started: " + err.Error()})
			}
			return
		}
		log.Warn("the Podman service is unavailable; retrying the launch", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// fail records why container name cannot run.
func (b *Backend) fail(r *record, name string, f failure) {
	if f.At.IsZero() {
		f.At = time.Now()
	}
	b.change(r, "cannot record a pod failure", func(r *record) {
		if r.Failures == nil {
			r.Failures = map[string]failure{}
		}
		r.Failures[name] = f
	})
}

func (b *Backend) update(r *record, change func(*record)) {
	b.change(r, "cannot update a pod record", change)
}

// change applies change to r and writes it, unless r is no longer the pod's record (deleted: its directory
// must not come back). The record is changed and encoded under b.mu, written under the pod's lock only.
func (b *Backend) change(r *record, failed string, change func(*record)) {
	uid := string(r.Pod.UID)
	unlock := b.podLocks.Lock(uid)
	defer unlock()
	b.mu.Lock()
	if b.records[uid] != r {
		b.mu.Unlock()
		return
	}
	change(r)
	data, err := json.Marshal(r)
	b.mu.Unlock()
	if err == nil {
		err = b.writeRecord(uid, data)
	}
	if err != nil {
		b.podLog(r.Pod).Error(failed, "err", err)
	}
}

// errNotRecorded ends a launch whose pod is no longer the backend's (see recorded).
var errNotRecorded = errors.New("the pod is no longer recorded")

// errExists is a fresh launch finding on the engine an object it was about to make: it starts again, asking.
var errExists = errors.New("an object of the pod exists on the engine already")

// lockRecorded takes the pod directory's lock, which Delete holds while it removes the pod, and returns its
// release if the launch may still make or start anything for r's pod (see recorded); otherwise false,
// holding nothing. A launch holds it around each thing it makes or starts, so that nothing is made for a
// pod once a Delete, of this process or of another on the same data directory, has begun removing it.
func (b *Backend) lockRecorded(ctx context.Context, r *record) (func(), bool) {
	unlock, err := pod.LockDir(b.podDir(string(r.Pod.UID)))
	if err != nil {
		return nil, false
	}
	if !b.recorded(ctx, r) {
		unlock()
		return nil, false
	}
	return unlock, true
}

// recorded tells whether a launch may still work for r's pod: it has not been stopped, r is still the
// pod's record in memory (under b.mu, which Delete takes to drop it) and on disk (a pod whose directory
// another process removed is never brought back).
func (b *Backend) recorded(ctx context.Context, r *record) bool {
	if ctx.Err() != nil {
		return false
	}
	uid := string(r.Pod.UID)
	b.mu.RLock()
	current := b.records[uid] == r
	b.mu.RUnlock()
	if !current {
		return false
	}
	_, err := os.Stat(filepath.Join(b.podDir(uid), recordFile))
	return err == nil
}

// launchOnce runs the launch's steps once; fresh skips the lists of what exists (see launch).
func (b *Backend) launchOnce(ctx context.Context, r *record, prep *prepared, fresh bool) error {
	if !b.recorded(ctx, r) {
		return errNotRecorded
	}
	// Images first: a pod whose image cannot be had is not created at all.
	imageIDs, ok, err := b.pullImages(ctx, r, prep)
	if err != nil || !ok {
		return err
	}
	byName := map[string]libpod.ListContainer{}
	if !fresh {
		existing, err := b.api.ContainerList(ctx, b.podLabels(string(r.Pod.UID)))
		if err != nil {
			return err
		}
		for _, c := range existing {
			if !c.IsInfra {
				byName[c.Labels[pod.LabelContainer]] = c
			}
		}
	}
	infra, ok, err := b.ensurePod(ctx, r, prep, fresh)
	if err != nil || !ok {
		return err
	}
	// The mesh/tunnel text of the annotations runs in the pod's network namespace before any container.
	if ok, err := b.preExec(ctx, r); err != nil || !ok {
		return err
	}
	if ok, err := b.createContainers(ctx, r, prep, byName, imageIDs, infra, fresh); err != nil || !ok {
		return err
	}
	if ok, err := b.runContainers(ctx, r, prep); err != nil || !ok {
		return err
	}
	b.update(r, func(r *record) { r.Launched = true })
	return nil
}

// pullImages pulls each image the pod's containers need, once per image and pull policy, and returns the
// ids the pulls named, by image. A container whose image cannot be had gets the failure recorded, and ok is
// false: the pod is not created.
func (b *Backend) pullImages(ctx context.Context, r *record, prep *prepared) (ids map[string]string, ok bool, err error) {
	pulled := map[string]bool{}
	ids = map[string]string{}
	failed := false
	for _, cp := range prep.specs {
		key := cp.spec.Image + "|" + string(pod.PullPolicy(cp.c))
		if pulled[key] {
			continue
		}
		id, f, err := b.pullImage(ctx, cp.c, cp.spec.Image)
		if err != nil {
			return nil, false, err
		} else if f != nil {
			b.fail(r, cp.c.Name, *f)
			failed = true
			continue
		}
		if id != "" {
			ids[cp.spec.Image] = id
		}
		pulled[key] = true
	}
	return ids, !failed, nil
}

// ensurePod creates the Podman pod unless it exists (fresh: without asking first), and the pod's memory
// volumes; infra tells whether the pod has an infra container (needsInfra, or what the pod found has).
// When either cannot be made for good, what was made is removed, every container gets the failure recorded
// and ok is false.
func (b *Backend) ensurePod(ctx context.Context, r *record, prep *prepared, fresh bool) (infra, ok bool, err error) {
	p := r.Pod
	var pods []libpod.ListPod
	if !fresh {
		if pods, err = b.api.PodList(ctx, b.podLabels(string(p.UID))); err != nil {
			return false, false, err
		}
	}
	infra = needsInfra(p)
	if len(pods) > 0 {
		// Made by an earlier launch, perhaps of a backend that gave every pod an infra container.
		infra = pods[0].InfraID != ""
	}
	if len(pods) == 0 {
		unlock, ok := b.lockRecorded(ctx, r)
		if !ok {
			return false, false, errNotRecorded
		}
		_, err := b.api.PodCreate(ctx, b.podSpec(p, r.PodName, infra))
		unlock()
		if err != nil {
			if isTransient(err) {
				return false, false, err
			}
			if fresh && libpod.IsConflict(err) {
				return false, false, errExists
			}
			b.removeEngineObjects(context.WithoutCancel(ctx), string(p.UID), nil, true)
			for _, c := range allContainers(p) {
				b.fail(r, c.Name, failure{Reason: pod.ReasonCreateContainerError, Message: "cannot create the Podman pod: " + err.Error()})
			}
			return false, false, nil
		}
	}
	if err := b.createMemoryVolumes(ctx, r, prep.vols); err != nil {
		if isTransient(err) {
			return false, false, err
		}
		b.removeEngineObjects(context.WithoutCancel(ctx), string(p.UID), nil, true)
		for _, c := range allContainers(p) {
			b.fail(r, c.Name, failure{Reason: pod.ReasonCreateContainerError, Message: err.Error()})
		}
		return false, false, nil
	}
	return infra, true, nil
}

// createContainers creates each container not already in byName (those on the engine), in a pod with an
// infra container or not (infra). When one cannot be created for good, failAll undoes the pod and ok is false.
func (b *Backend) createContainers(ctx context.Context, r *record, prep *prepared, byName map[string]libpod.ListContainer, imageIDs map[string]string, infra, fresh bool) (ok bool, err error) {
	for _, cp := range prep.specs {
		if _, ok := byName[cp.c.Name]; ok {
			continue
		}
		if !b.recorded(ctx, r) {
			return false, errNotRecorded
		}
		img, err := b.imageConfig(ctx, cp.spec.Image, imageIDs[cp.spec.Image])
		if err != nil {
			if isTransient(err) {
				return false, err
			}
			b.failAll(ctx, r, cp.c.Name, fmt.Errorf("cannot read the configuration of image %q: %w", cp.c.Image, err))
			return false, nil
		}
		spec, err := b.withShim(cp, img, b.shimDir(string(r.Pod.UID), cp.c.Name))
		if err != nil {
			b.failAll(ctx, r, cp.c.Name, err)
			return false, nil
		}
		if !infra {
			spec = withOwnNamespaces(spec, r.Pod)
		}
		if _, err := b.api.ContainerCreate(ctx, spec); err != nil {
			if isTransient(err) {
				return false, err
			}
			if fresh && libpod.IsConflict(err) {
				return false, errExists
			}
			b.failAll(ctx, r, cp.c.Name, err)
			return false, nil
		}
		// A failure recorded by an earlier launch no longer describes the container made now.
		b.clearFailure(r, cp.c.Name)
	}
	return true, nil
}

// imageConfig is the configuration of image, whose id the pull named (empty when it did not): an image id
// names its content, so what one inspect of it said is kept and serves every later pod of that id.
func (b *Backend) imageConfig(ctx context.Context, image, id string) (libpod.ImageConfig, error) {
	if id != "" {
		b.cacheMu.Lock()
		cfg, ok := b.imageConfigs[id]
		b.cacheMu.Unlock()
		if ok {
			return cfg, nil
		}
	}
	ref := image
	if id != "" {
		ref = id
	}
	img, err := b.api.ImageInspect(ctx, ref)
	if err != nil {
		return libpod.ImageConfig{}, err
	}
	if id != "" {
		b.cacheMu.Lock()
		if b.imageConfigs == nil || len(b.imageConfigs) >= maxImageConfigs {
			b.imageConfigs = map[string]libpod.ImageConfig{} // a handful of images in practice: start over
		}
		b.imageConfigs[id] = img.Config
		b.cacheMu.Unlock()
	}
	return img.Config, nil
}

// maxImageConfigs bounds the image configurations kept.
const maxImageConfigs = 256

// runContainers runs the init containers to completion, in order, then starts the app containers. ok is
// false when an init container ended the pod.
func (b *Backend) runContainers(ctx context.Context, r *record, prep *prepared) (ok bool, err error) {
	for _, cp := range prep.specs {
		if cp.role != pod.RoleInit {
			continue
		}
		ok, err := b.runInit(ctx, r, cp)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, cp := range prep.specs {
		if cp.role != pod.RoleContainer {
			continue
		}
		if _, err := b.start(ctx, r, cp); err != nil {
			return false, err
		}
	}
	return true, nil
}

// failAll records that container name could not be created because of err. Half a pod is worse than none:
// what was made is removed, the reason stays on the container and the others are told why they were not made.
// The removal comes first, so that a status showing the failure never shows half a pod still on the engine (a
// backend stopped in between redoes the launch, which fails again and records it).
func (b *Backend) failAll(ctx context.Context, r *record, name string, err error) {
	b.removeEngineObjects(context.WithoutCancel(ctx), string(r.Pod.UID), nil, true)
	for _, c := range allContainers(r.Pod) {
		msg := err.Error()
		if c.Name != name {
			msg = fmt.Sprintf("not created: container %q of the pod could not be created", name)
		}
		b.fail(r, c.Name, failure{Reason: pod.ReasonCreateContainerError, Message: msg})
	}
}

// runInit runs one init container to completion: its exit is its died event or the engine's answer to wait
// (see waitExit). A failed run is retried with a growing delay when the restart policy says so; otherwise
// the pod ends there (ok false).
func (b *Backend) runInit(ctx context.Context, r *record, cp containerPlan) (ok bool, err error) {
	name := cp.spec.Name
	ins, err := b.api.ContainerInspect(ctx, name)
	if err != nil {
		return false, err
	}
	delay := 2 * time.Second
	for {
		switch ins.State.Status {
		case "exited", "stopped":
			if ins.State.ExitCode == 0 && !ins.State.FinishedAt.IsZero() {
				return true, nil
			}
			if ins.State.FinishedAt.IsZero() || ins.State.StartedAt.IsZero() {
				break // never ran: start it below
			}
			code := ins.State.ExitCode
			if !pod.ShouldRestart(pod.RestartPolicy(r.Pod), int(code)) {
				b.update(r, func(r *record) { r.InitFailed = cp.c.Name })
				return false, nil
			}
			b.update(r, func(r *record) {
				if r.InitRestarts == nil {
					r.InitRestarts, r.InitLast = map[string]int32{}, map[string]lastRun{}
				}
				r.InitRestarts[cp.c.Name]++
				r.InitLast[cp.c.Name] = lastRun{ExitCode: code, StartedAt: ins.State.StartedAt, FinishedAt: ins.State.FinishedAt}
			})
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(delay):
			}
			delay = min(2*delay, 5*time.Minute)
		}
		died, release := b.view.exitSignal(ins.ID)
		if ins.State.Status != "running" {
			if started, err := b.start(ctx, r, cp); err != nil || !started {
				release()
				return false, err
			}
		}
		err := b.waitExit(ctx, name, died)
		release()
		if err != nil {
			return false, err
		}
		if ins, err = b.api.ContainerInspect(ctx, name); err != nil {
			return false, err
		}
	}
}

// waitExit waits for the end of container name's run: the engine's wait, or the container's died event
// (died), whichever comes first. Podman 4.3's wait answers once the container is cleaned up, which conmon's
// cleanup process does seconds late on a busy machine (and then 4.3 waits up to 20 s more); the died event
// is written as soon as Podman notices the exit. The caller inspects the container after: a wake by a
// replayed event of an earlier run finds it still running, and waits again.
func (b *Backend) waitExit(ctx context.Context, name string, died <-chan struct{}) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := b.api.ContainerWait(ctx, name, "exited", "stopped")
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-died:
		return nil
	}
}

// subPathRefused is a subPath that start would not bind: the container's failure, not an engine's.
type subPathRefused struct{ err error }

func (e subPathRefused) Error() string { return e.err.Error() }

// start binds the container's subPaths, resolved beneath their volumes now, onto the pinned targets its
// spec mounts, then starts it. It runs before every start the backend makes, so a subPath that an init
// container (or an earlier run) replaced by a symbolic link out of its volume is refused, with reason
// CreateContainerError; Podman's own restarts of a container reuse the pinned mounts, which a later swap
// inside the volume does not change. Both happen under the pod directory's lock and only while the pod is
// still recorded (errNotRecorded otherwise), so a pod being deleted never gets a container started again.
// started is false when the container could not start; why is recorded
// (an init container that cannot start ends the pod, except a refused subPath, which waits as in Kubernetes).
func (b *Backend) start(ctx context.Context, r *record, cp containerPlan) (started bool, err error) {
	unlock, ok := b.lockRecorded(ctx, r)
	if !ok {
		return false, errNotRecorded
	}
	err = pod.PinSubPaths(cp.c.Name, cp.mounts)
	if err == nil {
		err = b.api.ContainerStart(ctx, cp.spec.Name)
	} else {
		err = subPathRefused{err}
	}
	unlock()
	var refused subPathRefused
	if errors.As(err, &refused) {
		b.fail(r, cp.c.Name, failure{Reason: pod.ReasonCreateContainerError, Message: refused.err.Error()})
		return false, nil
	}
	if err != nil {
		if isTransient(err) {
			return false, err
		}
		b.fail(r, cp.c.Name, failure{Reason: pod.ReasonStartError, Message: err.Error(), Terminated: true})
		if cp.role == pod.RoleInit {
			b.update(r, func(r *record) { r.InitFailed = cp.c.Name })
		}
		return false, nil
	}
	b.clearFailure(r, cp.c.Name)
	return true, nil
}

// clearFailure forgets the failure recorded for container name, if any.
func (b *Backend) clearFailure(r *record, name string) {
	b.mu.RLock()
	_, ok := r.Failures[name]
	b.mu.RUnlock()
	if ok {
		b.update(r, func(r *record) { delete(r.Failures, name) })
	}
}

// pullImage makes the container's image present as its pull policy says, and returns its id when the pull
// named it (not for a pull policy Never). A nil failure and nil error mean the image is there; a failure is
// the image's fault (a missing image, a registry's refusal). Concurrent launches share pulls (pullQueue).
func (b *Backend) pullImage(ctx context.Context, c *v1.Container, image string) (id string, f *failure, err error) {
	ctx, cancel := context.WithTimeout(ctx, b.pullTimeout)
	defer cancel()
	policy := pod.PullPolicy(c)
	defer func(start time.Time) {
		outcome := "ok"
		switch {
		case err != nil:
			outcome = "unavailable"
		case f != nil:
			outcome = "failed"
		}
		b.metrics.pulls.WithLabelValues(string(policy), outcome).Observe(time.Since(start).Seconds())
	}(time.Now())
	switch policy {
	case v1.PullNever:
		ok, err := b.api.ImageExists(ctx, image)
		if err != nil {
			return "", nil, err
		}
		if !ok {
			return "", &failure{Reason: pod.ReasonErrImageNeverPull, Message: fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)}, nil
		}
		return "", nil, nil
	case v1.PullIfNotPresent:
		id, err = b.pulls.pull(ctx, image, libpod.PullMissing, b.pullNow)
	default:
		id, err = b.pulls.pull(ctx, image, libpod.PullAlways, b.pullNow)
	}
	f, err = pullFailure(c, err)
	if f != nil || err != nil {
		return "", f, err
	}
	return id, nil, nil
}

// pullNow makes one pull of the service, shared by the launches waiting for it (pullQueue).
func (b *Backend) pullNow(image, policy string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.pullTimeout)
	defer cancel()
	return b.api.ImagePull(ctx, image, policy)
}

func pullFailure(c *v1.Container, err error) (*failure, error) {
	if err == nil {
		return nil, nil
	}
	var u *libpod.UnavailableError
	if errors.As(err, &u) {
		return nil, err
	}
	return &failure{Reason: pod.ReasonErrImagePull, Message: fmt.Sprintf("pulling image %q: %v", c.Image, err)}, nil
}

// createMemoryVolumes makes one tmpfs Podman volume per medium: Memory emptyDir, so that every container of
// the pod mounts the same tmpfs (a per-container tmpfs mount would not be shared).
func (b *Backend) createMemoryVolumes(ctx context.Context, r *record, vols map[string]*pod.Volume) error {
	if !slices.ContainsFunc(slices.Collect(maps.Values(vols)), func(v *pod.Volume) bool {
		return v.Kind == pod.KindEmptyDir && v.Medium == v1.StorageMediumMemory
	}) {
		return nil // nothing to make: no need to ask what exists
	}
	have, err := b.api.VolumeList(ctx, b.podLabels(string(r.Pod.UID)))
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, v := range have {
		exists[v.Name] = true
	}
	for _, v := range vols {
		if v.Kind != pod.KindEmptyDir || v.Medium != v1.StorageMediumMemory {
			continue
		}
		name := volumeName(r.PodName, v.Name)
		if exists[name] {
			continue
		}
		labels := pod.Labels(r.Pod, b.env.Instance, b.env.Name)
		labels[pod.LabelRole] = pod.RolePod
		opts := map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "mode=1777"}
		if v.SizeLimitBytes > 0 {
			opts["o"] += ",size=" + strconv.FormatInt(v.SizeLimitBytes, 10)
		}
		if _, err := b.api.VolumeCreate(ctx, libpod.VolumeSpec{Name: name, Driver: "local", Labels: labels, Options: opts}); err != nil {
			return fmt.Errorf("cannot create the tmpfs of emptyDir %q: %w", v.Name, err)
		}
	}
	return nil
}

// isTransient tells an engine that cannot be reached (retry) from one that refused (record and stop).
func isTransient(err error) bool {
	var u *libpod.UnavailableError
	return errors.As(err, &u) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func allContainers(p *v1.Pod) []*v1.Container {
	out := make([]*v1.Container, 0, len(p.Spec.InitContainers)+len(p.Spec.Containers))
	for i := range p.Spec.InitContainers {
		out = append(out, &p.Spec.InitContainers[i])
	}
	for i := range p.Spec.Containers {
		out = append(out, &p.Spec.Containers[i])
	}
	return out
}
