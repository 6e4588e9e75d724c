package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/docker/api/types/volume"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

const (
	// labelAttempt numbers the runs of one container: a restart is a new container with the next number, as
	// the kubelet does, so that lastState and the previous run's logs stay available.
	labelAttempt = pod.LabelPrefix + "attempt"
	gpuResource  = "nvidia.com/gpu"
	// memoryVolumeDir is where the pause container holds each Memory emptyDir, so that a tmpfs outlives the
	// containers that write it (an init container's files reach the main container).
	memoryVolumeDir = "/.idp-volumes/"
)

// Create validates the pod, records it (its directory, its volumes, its pause container) and answers; the
// pod's runner then pulls images and starts containers, and records any failure for Status.
func (b *Backend) Create(ctx context.Context, req backend.CreateRequest) (backend.CreateResult, error) {
	p := req.Pod
	if err := b.validate(p); err != nil {
		return backend.CreateResult{}, err
	}
	uid := string(p.UID)
	unlock := b.lock(uid)
	defer unlock()

	if rec, err := b.readRecord(uid); err == nil && rec.RemoteID != "" {
		return backend.CreateResult{RemoteID: rec.RemoteID}, nil // a retried create starts nothing twice
	}
	if b.mayHaveRemains(uid) {
		_ = b.removePod(ctx, refOfPod(p), 0) // the remains of an earlier create that crashed halfway
	}
	if err := b.reserve(uid); err != nil {
		return backend.CreateResult{}, err
	}
	// Whatever fails from here leaves nothing behind: no half-made pod, and its place is free again.
	done := false
	defer func() {
		if !done {
			_ = b.removePod(context.WithoutCancel(ctx), refOfPod(p), 0)
		}
	}()
	rec := &record{Pod: p, Containers: req.Containers, Created: time.Now().UTC()}
	if err := b.writeRecord(uid, rec); err != nil {
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "cannot record the pod: %w", err)
	}
	plan, err := b.plan(rec)
	if err != nil {
		return backend.CreateResult{}, err
	}
	if err := b.createMemoryVolumes(ctx, p, plan.volumes); err != nil {
		return backend.CreateResult{}, err
	}
	id, err := b.createPause(ctx, p, plan.volumes)
	if err != nil {
		return backend.CreateResult{}, err
	}
	b.view.touch(uid) // its next status lists it, even before the engine's events of the pause arrive
	rec.RemoteID = id
	if err := b.writeRecord(uid, rec); err != nil {
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "cannot record the pod: %w", err)
	}
	done = true
	// The runner's first step starts from what was just made: the pause, running, and nothing else of the
	// pod (a container of it made meanwhile by someone else would meet a name conflict, and the next step
	// lists the pod).
	b.startRunner(rec, &podContainers{pause: &container.Summary{ID: id, State: "running",
		Labels: pod.ContainerLabels(p, b.env.Instance, b.env.Name, "POD", pod.RolePause)}, runs: map[string][]container.Summary{}})
	b.podLog(refOfPod(p)).Info("pod created", "pause", shortID(id))
	return backend.CreateResult{RemoteID: id}, nil
}

// mayHaveRemains tells whether an earlier create of pod uid may have left something: its directory, which a
// create makes before anything else, or a container the view knows or cannot rule out.
func (b *Backend) mayHaveRemains(uid string) bool {
	if _, err := os.Stat(b.podDir(uid)); !errors.Is(err, fs.ErrNotExist) {
		return true
	}
	pc, current := b.view.pod(uid, time.Now(), b.cfg.StatusMaxAge.D())
	return pc != nil || !current
}

// reserve takes a place for the pod within the pods limit by making its directory, which countPods counts,
// in one step with the count; the caller holds the pod's lock.
func (b *Backend) reserve(uid string) error {
	b.admitMu.Lock()
	defer b.admitMu.Unlock()
	if n := b.countPods(); int64(n) >= b.cfg.Pods {
		return backend.Unavailable("backend %q already runs %d pods, its limit (config key pods)", b.env.Name, n)
	}
	if err := os.MkdirAll(b.podDir(uid), 0o700); err != nil {
		return backend.Errorf(backend.KindInternal, "cannot create the pod directory: %w", err)
	}
	return nil
}

// validate is pod.Validate plus what is Docker's own: GPUs exist, and no subPath into a Memory emptyDir
// (Engine API 1.41 cannot mount part of a volume).
func (b *Backend) validate(p *v1.Pod) error {
	if p == nil {
		return backend.Invalid("the create request has no pod")
	}
	if err := pod.CheckUID(string(p.UID)); err != nil {
		return err // the refusal every backend gives, before anything else is checked
	}
	caps := b.capabilities()
	var extra pod.Problems
	memory := map[string]bool{}
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil && v.EmptyDir.Medium == v1.StorageMediumMemory {
			memory[v.Name] = true
		}
	}
	check := func(kind string, list []v1.Container) {
		for i, c := range list {
			for _, rl := range []v1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
				if q, ok := rl[gpuResource]; ok && !q.IsZero() && b.gpus == 0 {
					extra = append(extra, fmt.Sprintf("spec.%s[%d].resources: %s is requested but the Docker Engine of backend %q has no GPUs",
						kind, i, gpuResource, b.env.Name))
					caps.ExtendedResources = append(caps.ExtendedResources, gpuResource) // said once, clearly
					break
				}
			}
			for j, vm := range c.VolumeMounts {
				if vm.SubPath != "" && memory[vm.Name] {
					extra = append(extra, fmt.Sprintf("spec.%s[%d].volumeMounts[%d].subPath: a subPath into the Memory emptyDir %q is not supported by backend %q",
						kind, i, j, vm.Name, b.env.Name))
				}
			}
		}
	}
	check("initContainers", p.Spec.InitContainers)
	check("containers", p.Spec.Containers)
	var problems pod.Problems
	if err := pod.Validate(p, caps, b.env.Name); err != nil {
		if !errors.As(err, &problems) {
			return err
		}
	}
	problems = append(problems, extra...)
	if len(problems) == 0 {
		return nil
	}
	return &backend.Error{Kind: backend.KindInvalid, Msg: problems.Error(), Err: problems}
}

// podPlan is what the runner needs to create the pod's containers.
type podPlan struct {
	rec     *record
	objs    *pod.Objects
	volumes map[string]*pod.Volume
}

// plan materialises the pod's volumes and checks that every container's env resolves, so that a pod that
// cannot run is refused by Create rather than failing later. Mounts are resolved when each container is
// created and started, as the kubelet does: a subPath may name what an earlier container makes.
func (b *Backend) plan(rec *record) (*podPlan, error) {
	p := rec.Pod
	objs := pod.NewObjects(rec.Containers)
	if err := pod.ExpandSubPathExprs(p, objs); err != nil {
		return nil, backend.Errorf(backend.KindInvalid, "%w", err)
	}
	vols, err := pod.MaterializeVolumes(p, objs, b.podDir(string(p.UID)))
	if err != nil {
		return nil, backend.Errorf(backend.KindInvalid, "%w", err)
	}
	for _, list := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range list {
			if _, err := pod.ResolveEnv(p, &list[i], objs); err != nil {
				return nil, backend.Invalid("container %q: %v", list[i].Name, err)
			}
			if err := checkShimSpec(p, &list[i]); err != nil {
				return nil, backend.Invalid("%v", err)
			}
		}
	}
	return &podPlan{rec: rec, objs: objs, volumes: vols}, nil
}

func memoryVolumeName(p *v1.Pod, volume string) string {
	return nameUnsafe.ReplaceAllString(fmt.Sprintf("idp_%s_%s", p.UID, volume), "_")
}

// createMemoryVolumes makes a tmpfs Docker volume for each Memory emptyDir (sized by its sizeLimit), which
// the pod's containers share.
func (b *Backend) createMemoryVolumes(ctx context.Context, p *v1.Pod, vols map[string]*pod.Volume) error {
	for _, v := range vols {
		if v.Medium != v1.StorageMediumMemory {
			continue
		}
		o := "mode=1777"
		if v.SizeLimitBytes > 0 {
			o += ",size=" + strconv.FormatInt(v.SizeLimitBytes, 10)
		}
		labels := pod.Labels(p, b.env.Instance, b.env.Name)
		labels[pod.LabelRole] = pod.RolePod
		start := time.Now()
		_, err := b.cli.VolumeCreate(ctx, volume.CreateOptions{
			Name: memoryVolumeName(p, v.Name), Driver: "local", Labels: labels,
			DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": o},
		})
		b.metrics.observe("volume_create", start, err)
		if err != nil {
			return engineError(fmt.Sprintf("cannot create the tmpfs volume of emptyDir %q", v.Name), err)
		}
	}
	return nil
}

// containerConfig builds the Docker configuration of one run (attempt) of container c.
func (b *Backend) containerConfig(ctx context.Context, plan *podPlan, c *v1.Container, role string, attempt int, pauseID string) (*container.Config, *container.HostConfig, error) {
	p := plan.rec.Pod
	env, err := pod.ResolveEnv(p, c, plan.objs)
	if err != nil {
		return nil, nil, err
	}
	lookup := pod.EnvLookup(env)
	labels := pod.ContainerLabels(p, b.env.Instance, b.env.Name, c.Name, role)
	labels[labelAttempt] = strconv.Itoa(attempt)
	cfg := &container.Config{
		Image:      c.Image,
		Env:        pod.EnvList(env),
		WorkingDir: c.WorkingDir,
		Labels:     labels,
	}
	// The shim is the entrypoint; it runs the command Kubernetes' rules give (command replaces the image's
	// entrypoint and drops its cmd, args replace the cmd) and sends lifecycle.stopSignal itself.
	entrypoint, shimMounts, err := b.prepareShim(ctx, p, c, attempt, pod.ExpandAll(c.Command, lookup), pod.ExpandAll(c.Args, lookup))
	if err != nil {
		return nil, nil, err
	}
	cfg.Entrypoint = strslice.StrSlice(entrypoint)
	grace := stopSeconds(pod.GracePeriod(p).Seconds())
	cfg.StopTimeout = &grace
	user, err := b.user(ctx, p, c)
	if err != nil {
		return nil, nil, err
	}
	cfg.User = user

	r := pod.ContainerResources(c)
	hc := &container.HostConfig{
		NetworkMode: container.NetworkMode("container:" + pauseID),
		IpcMode:     container.IpcMode("container:" + pauseID),
		LogConfig:   container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": b.cfg.LogMaxSize}},
		Resources: container.Resources{
			NanoCPUs:          r.CPULimitNano,
			CPUShares:         pod.CPUShares(r.CPURequestNano),
			Memory:            r.MemoryLimitBytes,
			MemoryReservation: r.MemoryRequestBytes,
		},
	}
	hc.GroupAdd = pod.SupplementalGroups(p)
	if r.MemoryLimitBytes > 0 {
		hc.Resources.MemorySwap = r.MemoryLimitBytes // no swap, as the kubelet: over the limit is an OOM kill
	}
	if n := r.Extended[gpuResource]; n > 0 {
		hc.Resources.DeviceRequests = []container.DeviceRequest{{Driver: "nvidia", Count: int(n), Capabilities: [][]string{{"gpu"}}}}
	}
	if sc := c.SecurityContext; sc != nil {
		hc.Privileged = sc.Privileged != nil && *sc.Privileged
		hc.ReadonlyRootfs = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		if sc.Capabilities != nil {
			for _, c := range sc.Capabilities.Add {
				hc.CapAdd = append(hc.CapAdd, string(c))
			}
			for _, c := range sc.Capabilities.Drop {
				hc.CapDrop = append(hc.CapDrop, string(c))
			}
		}
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges")
		}
	}
	hc.Mounts = append(hc.Mounts, shimMounts...)
	mounts, err := b.pinMounts(p, c, plan)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range mounts {
		if m.Volume.Medium == v1.StorageMediumMemory {
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: memoryVolumeName(p, m.Volume.Name),
				Target: m.Target, ReadOnly: m.ReadOnly})
			continue
		}
		if _, err := os.Stat(m.Source); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("the source %s of volume %q is missing", m.Source, m.Volume.Name)
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	return cfg, hc, nil
}

// pinMounts resolves the volumeMounts of c and binds its subPaths, resolved beneath their volumes now,
// onto their pinned targets in the pod directory, which the engine is given as bind sources. It runs right
// before every create and start of a run of c, so a subPath that an init container or an earlier run
// replaced by a symbolic link out of its volume is refused then, and a later swap changes nothing mounted.
func (b *Backend) pinMounts(p *v1.Pod, c *v1.Container, plan *podPlan) ([]pod.Mount, error) {
	mounts, err := pod.Mounts(c, plan.volumes, pod.PinDir(b.podDir(string(p.UID)), c.Name))
	if err != nil {
		return nil, err
	}
	return mounts, pod.PinSubPaths(c.Name, mounts)
}

// user is the Docker user of c: runAsUser and runAsGroup from the container's or the pod's security
// context. A group without a user keeps the image's user, as in Kubernetes.
func (b *Backend) user(ctx context.Context, p *v1.Pod, c *v1.Container) (string, error) {
	uid, gid := pod.RunAs(p, c)
	switch {
	case uid != nil && gid != nil:
		return fmt.Sprintf("%d:%d", *uid, *gid), nil
	case uid != nil:
		return strconv.FormatInt(*uid, 10), nil
	case gid != nil:
		img, err := b.inspectImage(ctx, c.Image, imageConfigAge)
		if err != nil {
			return "", fmt.Errorf("cannot read the user of image %q: %v", c.Image, err)
		}
		user := "0"
		if img.Config != nil && img.Config.User != "" {
			user = img.Config.User
			if i := strings.IndexByte(user, ':'); i >= 0 {
				user = user[:i]
			}
		}
		return fmt.Sprintf("%s:%d", user, *gid), nil
	}
	return "", nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
