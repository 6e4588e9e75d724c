package pod

import v1 "k8s.io/api/core/v1"

// Labels every backend puts on each object it creates (containers, networks, volumes, pods, jobs), so that
// List, recovery and clean-up are a query on them and never touch anything the backend did not create.
const (
	LabelPrefix    = "dispatcher.interlink.eu/"
	LabelPodUID    = LabelPrefix + "pod-uid"
	LabelNamespace = LabelPrefix + "pod-namespace"
	LabelPodName   = LabelPrefix + "pod-name"
	LabelContainer = LabelPrefix + "container-name"
	LabelInstance  = LabelPrefix + "instance" // the dispatcher instance (backend.Env.Instance)
	LabelBackend   = LabelPrefix + "backend"  // the backend's name in the dispatcher config (backend.Env.Name)
	// LabelRole tells a pod's objects apart: RolePause, RoleInit or RoleContainer.
	LabelRole = LabelPrefix + "role"
)

// Values of LabelRole.
const (
	RolePause     = "pause"
	RoleInit      = "init"
	RoleContainer = "container"
	RolePod       = "pod" // an object standing for the whole pod (a network, a volume, a native pod)
)

// Labels returns the labels of an object made for pod p by the backend named backendName under the dispatcher
// instance instance. Add LabelContainer and LabelRole for a container.
func Labels(p *v1.Pod, instance, backendName string) map[string]string {
	return map[string]string{
		LabelPodUID:    string(p.UID),
		LabelNamespace: p.Namespace,
		LabelPodName:   p.Name,
		LabelInstance:  instance,
		LabelBackend:   backendName,
	}
}

// ContainerLabels returns Labels plus the container's name and role.
func ContainerLabels(p *v1.Pod, instance, backendName, container, role string) map[string]string {
	l := Labels(p, instance, backendName)
	l[LabelContainer] = container
	l[LabelRole] = role
	return l
}
