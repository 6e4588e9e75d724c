package podman

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// podmanName names the Podman pod of a Kubernetes pod: readable in `podman pod ps`, unique by the UID.
func podmanName(p *v1.Pod) string {
	return sanitize(fmt.Sprintf("k8s_%s_%s_%s", p.Namespace, p.Name, p.UID))
}

func containerName(podName, container string) string { return podName + "_" + sanitize(container) }

func volumeName(podName, volume string) string { return podName + "_" + sanitize(volume) }

// sanitize keeps what Podman accepts in names: [a-zA-Z0-9_.-].
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			return r
		}
		return '-'
	}, s)
}

// normalizeImage qualifies a short image name the way Kubernetes reads it (docker.io, library/ for
// official images), so that Podman's short-name resolution never has to guess or prompt.
func normalizeImage(ref string) string {
	name := ref
	if i := strings.IndexAny(name, "@"); i >= 0 {
		name = name[:i]
	}
	first, _, hasSlash := strings.Cut(name, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return ref
	}
	if !hasSlash {
		return "docker.io/library/" + ref
	}
	return "docker.io/" + ref
}

// needsInfra tells whether the Podman pod of p needs an infra container: it holds the network, IPC and UTS
// namespaces the pod's containers share, and a lone container (no init container, no pre-exec helper)
// shares them with none. Without it a pod costs the engine one container instead of two (the infra
// container is created, started, stopped and removed like any other): a lone container then has its own
// namespaces, hostname, host entries and host ports (hostNetwork). One difference stays: a lone container
// that its restart policy restarts gets a new network namespace, so a new address on the engine's network.
func needsInfra(p *v1.Pod) bool {
	return len(p.Spec.InitContainers)+len(p.Spec.Containers) > 1 || pod.PreExecText(p) != ""
}

// podSpec is the Podman pod of p: the namespaces a Kubernetes pod shares, its hostname, and the host ports
// its containers ask for (in a Podman pod, ports are published by the pod, not by its containers). Without
// an infra container (infra false), the pod holds none of them: withOwnNamespaces gives them to its container.
func (b *Backend) podSpec(p *v1.Pod, name string, infra bool) libpod.PodSpec {
	labels := pod.Labels(p, b.env.Instance, b.env.Name)
	labels[pod.LabelRole] = pod.RolePod
	if !infra {
		return libpod.PodSpec{Name: name, Labels: labels, NoInfra: true}
	}
	spec := libpod.PodSpec{Name: name, Labels: labels, Share: []string{"ipc", "net", "uts"}}
	spec.Hostname, spec.PortMappings, spec.HostAdd, spec.Sysctl = podNamespaces(p)
	return spec
}

// withOwnNamespaces gives spec, the lone container of a pod without an infra container, what the infra
// container would hold for it: the pod's hostname, host entries, host ports and sysctls.
func withOwnNamespaces(spec libpod.ContainerSpec, p *v1.Pod) libpod.ContainerSpec {
	spec.Hostname, spec.PortMappings, spec.HostAdd, spec.Sysctl = podNamespaces(p)
	return spec
}

// podNamespaces are the pod's hostname, the host ports its containers ask for, its host entries (its
// hostAliases, see pod.HostAliasEntries) and its sysctls.
func podNamespaces(p *v1.Pod) (hostname string, ports []libpod.PortMapping, hostAdd []string, sysctl map[string]string) {
	hostname = p.Spec.Hostname
	if hostname == "" {
		hostname = p.Name
	}
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	for _, cs := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, port := range c.Ports {
				if port.HostPort == 0 {
					continue // reachable on the pod's address, as in Kubernetes; nothing to publish
				}
				ports = append(ports, libpod.PortMapping{
					HostIP: port.HostIP, HostPort: uint16(port.HostPort), ContainerPort: uint16(port.ContainerPort),
					Protocol: strings.ToLower(string(port.Protocol)),
				})
			}
		}
	}
	return hostname, ports, pod.HostAliasEntries(p), pod.Sysctls(p)
}

// containerSpec is the Podman container of c in the pod named podName, with its volume mounts, whose
// subPaths must be pinned (pod.PinSubPaths) before each start: the spec binds their pinned targets. Errors
// name the field at fault.
func (b *Backend) containerSpec(p *v1.Pod, c *v1.Container, role, podName string, vols map[string]*pod.Volume, objs *pod.Objects) (libpod.ContainerSpec, []pod.Mount, error) {
	env, err := pod.ResolveEnv(p, c, objs)
	if err != nil {
		return libpod.ContainerSpec{}, nil, fmt.Errorf("container %q: %w", c.Name, err)
	}
	lookup := pod.EnvLookup(env)
	spec := libpod.ContainerSpec{
		Name:    containerName(podName, c.Name),
		Pod:     podName,
		Image:   normalizeImage(c.Image),
		WorkDir: c.WorkingDir,
		Labels:  pod.ContainerLabels(p, b.env.Instance, b.env.Name, c.Name, role),
		// Kubernetes semantics: command replaces the entrypoint, args replace the image's cmd. Podman drops
		// the image's cmd once an entrypoint is given, as Kubernetes does.
		Entrypoint: pod.ExpandAll(c.Command, lookup),
		Command:    pod.ExpandAll(c.Args, lookup),
		Env:        map[string]string{},
	}
	for _, e := range env {
		spec.Env[e.Name] = e.Value
	}

	mounts, err := pod.Mounts(c, vols, pod.PinDir(b.podDir(string(p.UID)), c.Name))
	if err != nil {
		return libpod.ContainerSpec{}, nil, err
	}
	for _, m := range mounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		if m.Volume.Kind == pod.KindEmptyDir && m.Volume.Medium == v1.StorageMediumMemory {
			if m.SubPath != "" {
				return libpod.ContainerSpec{}, nil, fmt.Errorf("container %q mounts the medium: Memory emptyDir %q with a subPath, which the podman backend cannot do (Podman 4.3 volumes have no subPath); mount the whole volume", c.Name, m.Volume.Name)
			}
			spec.Volumes = append(spec.Volumes, &libpod.NamedVolume{Name: volumeName(podName, m.Volume.Name), Dest: m.Target, Options: []string{mode}})
			continue
		}
		spec.Mounts = append(spec.Mounts, libpod.Mount{Type: "bind", Source: m.Source, Destination: m.Target, Options: []string{"rbind", mode}})
	}

	res := pod.ContainerResources(c)
	if res.CPUOrMemory() {
		lr := &libpod.LinuxResources{}
		if res.CPULimitNano > 0 || res.CPURequestNano > 0 {
			lr.CPU = &libpod.LinuxCPU{}
			if res.CPULimitNano > 0 {
				// A quota per 100 ms period: 500m is 50 ms of CPU every 100 ms, half a CPU exactly.
				period := uint64(100000)
				quota := res.CPULimitNano * int64(period) / 1_000_000_000
				if quota < 1000 {
					quota = 1000 // the kernel's minimum quota is 1 ms
				}
				lr.CPU.Period, lr.CPU.Quota = &period, &quota
			}
			if shares := uint64(pod.CPUShares(res.CPURequestNano)); shares > 0 {
				lr.CPU.Shares = &shares
			}
		}
		if res.MemoryLimitBytes > 0 || res.MemoryRequestBytes > 0 {
			lr.Memory = &libpod.LinuxMemory{}
			if res.MemoryLimitBytes > 0 {
				limit := res.MemoryLimitBytes
				// No swap beyond the limit, as on a kubelet node: going over it is an OOM kill.
				swap := limit
				lr.Memory.Limit, lr.Memory.Swap = &limit, &swap
			}
			if res.MemoryRequestBytes > 0 {
				req := res.MemoryRequestBytes
				lr.Memory.Reservation = &req
			}
		}
		spec.ResourceLimits = lr
	}

	if role == pod.RoleContainer {
		switch pod.RestartPolicy(p) {
		case v1.RestartPolicyAlways:
			spec.RestartPolicy = "always"
		case v1.RestartPolicyOnFailure:
			spec.RestartPolicy = "on-failure" // no retry bound: Kubernetes retries for ever
		default:
			spec.RestartPolicy = "no"
		}
	} else {
		spec.RestartPolicy = "no" // init containers are retried by the backend, in order
	}
	// The shim enforces the grace period itself (preStop, the stop signal, SIGKILL when it is over); the
	// engine's own SIGKILL comes a little later, only for a shim that did not end.
	grace := uint(pod.GracePeriod(p).Seconds()) + shimStopMargin
	spec.StopTimeout = &grace

	user, err := userSpec(p, c)
	if err != nil {
		return libpod.ContainerSpec{}, nil, err
	}
	spec.User = user
	spec.Groups = pod.SupplementalGroups(p)
	if sc := c.SecurityContext; sc != nil {
		spec.Privileged = sc.Privileged != nil && *sc.Privileged
		spec.ReadOnlyFilesystem = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		spec.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
		if sc.Capabilities != nil {
			for _, cap := range sc.Capabilities.Add {
				spec.CapAdd = append(spec.CapAdd, capName(cap))
			}
			for _, cap := range sc.Capabilities.Drop {
				spec.CapDrop = append(spec.CapDrop, capName(cap))
			}
		}
	}
	spec.Stdin, spec.Terminal = c.Stdin, c.TTY
	return spec, mounts, nil
}

// shimStopMargin is how long the engine waits past the grace period before it kills a container's shim.
const shimStopMargin = 5

// shimSpec is what the shim runs and watches for c, but its Argv (see withShim).
func shimSpec(p *v1.Pod, c *v1.Container) shim.Spec {
	ss := shim.ContainerSpec(p, c, nil)
	ss.WorkingDir = "" // Podman starts the shim in it
	return ss
}

// withShim makes the container run through the shim: the argv resolved from the pod's command and args
// (already expanded in spec) and the image's ENTRYPOINT/CMD under Kubernetes' rules goes into the shim's spec
// in the container's state directory stateDir; the shim binary and that directory are bind-mounted, and the
// shim becomes the entrypoint with no command. The error is the pod's fault: nothing to run.
func (b *Backend) withShim(cp containerPlan, img libpod.ImageConfig, stateDir string) (libpod.ContainerSpec, error) {
	c := *cp.c
	c.Command, c.Args = cp.spec.Entrypoint, cp.spec.Command
	argv, err := shim.ResolveArgv(&c, img.Entrypoint, img.Cmd)
	if err != nil {
		return libpod.ContainerSpec{}, fmt.Errorf("container %q: %w", c.Name, err)
	}
	ss := cp.shim
	ss.Argv = argv
	if err := shim.WriteSpec(stateDir, ss); err != nil {
		return libpod.ContainerSpec{}, fmt.Errorf("container %q: %w", c.Name, err)
	}
	spec := cp.spec
	spec.Entrypoint, spec.Command = shim.Entrypoint(), nil
	spec.Mounts = append(slices.Clone(spec.Mounts),
		libpod.Mount{Type: "bind", Source: b.cfg.Shim, Destination: shim.BinaryPath, Options: []string{"rbind", "ro"}},
		libpod.Mount{Type: "bind", Source: stateDir, Destination: shim.StateDir, Options: []string{"rbind", "rw"}})
	if pod.BindsTerminationFile(&c) {
		// One file for the container; the shim empties it when Podman restarts the container in place.
		path, err := shim.PrepareTerminationFile(stateDir)
		if err != nil {
			return libpod.ContainerSpec{}, fmt.Errorf("container %q: %w", c.Name, err)
		}
		spec.Mounts = append(spec.Mounts, libpod.Mount{Type: "bind", Source: path, Destination: c.TerminationMessagePath, Options: []string{"bind", "rw"}})
	}
	return spec, nil
}

// shimDir is the host directory of a container's shim state, mounted at shim.StateDir.
func (b *Backend) shimDir(uid, container string) string {
	return filepath.Join(b.podDir(uid), "shim", sanitize(container))
}

// userSpec is the "uid[:gid]" a container runs as: its own securityContext over the pod's.
func userSpec(p *v1.Pod, c *v1.Container) (string, error) {
	uid, gid := pod.RunAs(p, c)
	switch {
	case uid == nil && gid == nil:
		return "", nil
	case uid == nil:
		// Podman needs a user to set a group; Kubernetes keeps the image's user, which is root unless the
		// image says otherwise. Running as root with the group is the common case and stays explicit.
		return "0:" + strconv.FormatInt(*gid, 10), nil
	case gid == nil:
		return strconv.FormatInt(*uid, 10), nil
	}
	return strconv.FormatInt(*uid, 10) + ":" + strconv.FormatInt(*gid, 10), nil
}

// capName spells a Kubernetes capability ("NET_ADMIN") as Podman does ("CAP_NET_ADMIN").
func capName(c v1.Capability) string {
	s := strings.ToUpper(string(c))
	if s == "ALL" || strings.HasPrefix(s, "CAP_") {
		return s
	}
	return "CAP_" + s
}
