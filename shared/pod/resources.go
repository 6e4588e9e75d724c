package pod

import (
	"k8s.io/apimachinery/pkg/api/resource"

	v1 "k8s.io/api/core/v1"
)

// Resources are one container's resources in the units engines take. Zero means unset.
type Resources struct {
	CPULimitNano       int64 // CPU limit in billionths of a CPU: 500m is 500000000 (Docker's NanoCPUs)
	CPURequestNano     int64
	MemoryLimitBytes   int64
	MemoryRequestBytes int64
	// Extended holds extended resources (e.g. nvidia.com/gpu) by name: the limit, or the request when no
	// limit is given (Kubernetes requires them equal).
	Extended map[v1.ResourceName]int64
}

// CPUOrMemory tells whether r asks for any CPU or memory, as a limit or a request.
func (r Resources) CPUOrMemory() bool {
	return r.CPULimitNano > 0 || r.CPURequestNano > 0 || r.MemoryLimitBytes > 0 || r.MemoryRequestBytes > 0
}

// ContainerResources reads c's limits and requests.
func ContainerResources(c *v1.Container) Resources {
	r := Resources{
		CPULimitNano:       NanoCPUs(c.Resources.Limits[v1.ResourceCPU]),
		CPURequestNano:     NanoCPUs(c.Resources.Requests[v1.ResourceCPU]),
		MemoryLimitBytes:   quantityValue(c.Resources.Limits[v1.ResourceMemory]),
		MemoryRequestBytes: quantityValue(c.Resources.Requests[v1.ResourceMemory]),
	}
	for _, list := range []v1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
		for name, q := range list {
			if !IsExtendedResource(name) {
				continue
			}
			if r.Extended == nil {
				r.Extended = map[v1.ResourceName]int64{}
			}
			r.Extended[name] = q.Value() // limits come second and win
		}
	}
	return r
}

// IsExtendedResource reports whether name is a resource beyond cpu and memory (including ephemeral-storage
// and hugepages, which a backend must declare like any other to be given them).
func IsExtendedResource(name v1.ResourceName) bool {
	return name != v1.ResourceCPU && name != v1.ResourceMemory
}

// NanoCPUs converts a CPU quantity to billionths of a CPU, exactly for every quantity Kubernetes accepts
// (its finest CPU unit is 1m).
func NanoCPUs(q resource.Quantity) int64 {
	if q.IsZero() {
		return 0
	}
	return q.ScaledValue(resource.Nano)
}

// CPUShares converts a CPU request to cgroup v1 cpu.shares the way the kubelet does (1 CPU = 1024, min 2).
// A zero request gives 0 (the engine's default).
func CPUShares(requestNano int64) int64 {
	if requestNano == 0 {
		return 0
	}
	shares := requestNano * 1024 / 1_000_000_000
	if shares < 2 {
		shares = 2
	}
	return shares
}

// PodResources sums what a pod needs at once: the sum over its regular containers, or the largest init
// container when that is more (init containers run one at a time, before the others).
func PodResources(p *v1.Pod) Resources {
	var sum Resources
	for i := range p.Spec.Containers {
		r := ContainerResources(&p.Spec.Containers[i])
		sum.CPULimitNano += r.CPULimitNano
		sum.CPURequestNano += r.CPURequestNano
		sum.MemoryLimitBytes += r.MemoryLimitBytes
		sum.MemoryRequestBytes += r.MemoryRequestBytes
		for k, v := range r.Extended {
			if sum.Extended == nil {
				sum.Extended = map[v1.ResourceName]int64{}
			}
			sum.Extended[k] += v
		}
	}
	for i := range p.Spec.InitContainers {
		r := ContainerResources(&p.Spec.InitContainers[i])
		sum.CPULimitNano = max(sum.CPULimitNano, r.CPULimitNano)
		sum.CPURequestNano = max(sum.CPURequestNano, r.CPURequestNano)
		sum.MemoryLimitBytes = max(sum.MemoryLimitBytes, r.MemoryLimitBytes)
		sum.MemoryRequestBytes = max(sum.MemoryRequestBytes, r.MemoryRequestBytes)
		for k, v := range r.Extended {
			if sum.Extended == nil {
				sum.Extended = map[v1.ResourceName]int64{}
			}
			sum.Extended[k] = max(sum.Extended[k], v)
		}
	}
	return sum
}

func quantityValue(q resource.Quantity) int64 {
	if q.IsZero() {
		return 0
	}
	return q.Value()
}
