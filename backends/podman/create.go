package podman

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// Create validates the pod, materialises its volumes and checks every container's environment and mounts,
// records it, and answers with the Podman pod's name; pulling, creating and starting go on in launch.
// Anything wrong with the pod itself is an ErrInvalid and leaves nothing behind.
func (b *Backend) Create(ctx context.Context, req backend.CreateRequest) (backend.CreateResult, error) {
	p := req.Pod
	if p == nil {
		return backend.CreateResult{}, backend.Invalid("the create request has no pod")
	}
	uid := string(p.UID)
	if err := pod.CheckUID(uid); err != nil {
		return backend.CreateResult{}, err
	}
	if err := b.checkLimitsEnforced(ctx, p); err != nil {
		return backend.CreateResult{}, err
	}
	// The pod's own lock: creates of other pods, statuses and deletes run on meanwhile.
	unlock := b.podLocks.Lock(uid)
	defer unlock()
	b.mu.RLock()
	known, ok := b.records[uid]
	b.mu.RUnlock()
	if ok {
		return backend.CreateResult{RemoteID: known.PodName}, nil
	}
	if err := pod.Validate(p, capabilities(), b.env.Name); err != nil {
		return backend.CreateResult{}, err
	}
	r := &record{Pod: p.DeepCopy(), Containers: req.Containers, PodName: podmanName(p), Created: time.Now().UTC()}
	prep, err := b.prepare(r, true)
	if err != nil {
		_ = pod.RemoveDir(b.podDir(uid))
		return backend.CreateResult{}, backend.Invalid("%v", err)
	}
	if err := os.MkdirAll(b.podDir(uid), 0o700); err != nil {
		_ = pod.RemoveDir(b.podDir(uid))
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "cannot create the pod's directory: %v", err)
	}
	if err := b.save(r); err != nil {
		_ = pod.RemoveDir(b.podDir(uid))
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "%v", err)
	}
	b.mu.Lock()
	b.records[uid] = r
	b.mu.Unlock()
	b.startLaunch(r, prep)
	b.startWatch(r)
	b.podLog(p).Info("pod accepted", "podman_pod", r.PodName)
	return backend.CreateResult{RemoteID: r.PodName}, nil
}

// checkLimitsEnforced refuses a pod that asks for CPU or memory when the service cannot enforce limits
// (rootless Podman on cgroup v1 ignores them with a mere warning): refused rather than run without them.
func (b *Backend) checkLimitsEnforced(ctx context.Context, p *v1.Pod) error {
	ctrs := allContainers(p)
	i := slices.IndexFunc(ctrs, func(c *v1.Container) bool { return pod.ContainerResources(c).CPUOrMemory() })
	if i < 0 {
		return nil
	}
	info, err := b.hostInfo(ctx)
	if err != nil {
		return engineError(fmt.Errorf("cannot tell whether the Podman service enforces resource limits: %w", err))
	}
	if !info.EnforcesLimits() {
		return backend.Invalid("container %q: resources: this backend's Podman is rootless on cgroup v1, which cannot enforce CPU or memory limits; use rootful Podman or a cgroup v2 host", ctrs[i].Name)
	}
	return nil
}

// prepared is a pod made ready on the host: its volumes, and the Podman spec of every container, init
// containers first.
type prepared struct {
	vols  map[string]*pod.Volume
	specs []containerPlan
}

type containerPlan struct {
	c    *v1.Container
	role string
	spec libpod.ContainerSpec
	// shim is what the shim runs and watches; its Argv is resolved at launch, once the image is present.
	shim shim.Spec
	// mounts are the container's volume mounts; their subPaths are pinned right before each start.
	mounts []pod.Mount
}

// prepare builds every container's spec, after materialising the pod's volumes when materialize is set
// (at create); errors are the pod's fault.
func (b *Backend) prepare(r *record, materialize bool) (*prepared, error) {
	p := r.Pod
	objs := pod.NewObjects(r.Containers)
	if err := pod.ExpandSubPathExprs(p, objs); err != nil {
		return nil, err
	}
	var vols map[string]*pod.Volume
	if materialize {
		var err error
		if vols, err = pod.MaterializeVolumes(p, objs, b.podDir(string(p.UID))); err != nil {
			return nil, err
		}
	} else {
		// A resumed launch must not replace the directories its running containers have bound.
		vols = pod.VolumesOnDisk(p, b.podDir(string(p.UID)))
	}
	out := &prepared{vols: vols}
	add := func(cs []v1.Container, role string) error {
		for i := range cs {
			spec, mounts, err := b.containerSpec(p, &cs[i], role, r.PodName, vols, objs)
			if err != nil {
				return err
			}
			ss := shimSpec(p, &cs[i])
			// The argv comes from the image, known only after the pull; everything else the shim will be
			// asked to do (probes, hooks, stop signal) is checked now, so that Create refuses what cannot run.
			check := ss
			check.Argv = []string{"placeholder"}
			if err := check.Validate(); err != nil {
				return fmt.Errorf("container %q: %w", cs[i].Name, err)
			}
			out.specs = append(out.specs, containerPlan{c: &cs[i], role: role, spec: spec, shim: ss, mounts: mounts})
		}
		return nil
	}
	if err := add(p.Spec.InitContainers, pod.RoleInit); err != nil {
		return nil, err
	}
	if err := add(p.Spec.Containers, pod.RoleContainer); err != nil {
		return nil, err
	}
	return out, nil
}
