package slurm

import (
	"fmt"
	"strconv"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// jobResources is what a pod needs at once, as the job must ask SLURM for it.
type jobResources struct {
	CPUNano     int64 // billionths of a CPU
	MemoryBytes int64
	GPUs        int64
}

// podJobResources sums the pod's containers: each container counts its limit, or its request when it has no
// limit; regular containers run together so they add up, init containers run alone so the largest of them
// counts when it is more.
func podJobResources(p *v1.Pod) jobResources {
	eff := func(c *v1.Container) (cpu, mem int64) {
		r := pod.ContainerResources(c)
		cpu, mem = r.CPULimitNano, r.MemoryLimitBytes
		if cpu == 0 {
			cpu = r.CPURequestNano
		}
		if mem == 0 {
			mem = r.MemoryRequestBytes
		}
		return cpu, mem
	}
	var j jobResources
	for i := range p.Spec.Containers {
		cpu, mem := eff(&p.Spec.Containers[i])
		j.CPUNano += cpu
		j.MemoryBytes += mem
	}
	for i := range p.Spec.InitContainers {
		cpu, mem := eff(&p.Spec.InitContainers[i])
		j.CPUNano = max(j.CPUNano, cpu)
		j.MemoryBytes = max(j.MemoryBytes, mem)
	}
	j.GPUs = podGPUs(p)
	return j
}

// cpusFlag is --cpus-per-task for nano CPUs, rounded up to whole CPUs (SLURM allocates whole CPUs).
func cpusFlag(nano int64) sbatchFlag {
	n := (nano + 999_999_999) / 1_000_000_000
	return sbatchFlag{Name: "cpus-per-task", Value: strconv.FormatInt(n, 10), HasValue: true}
}

// memFlag is --mem in mebibytes, rounded up.
func memFlag(bytes int64) sbatchFlag {
	mib := (bytes + (1<<20 - 1)) >> 20
	return sbatchFlag{Name: "mem", Value: strconv.FormatInt(mib, 10) + "M", HasValue: true}
}

// jobFlags computes the sbatch options of a pod's job by merging, from lowest to highest priority: the
// config's defaults and flags, the flavor's defaults and flags, the pod's slurm-job.vk.io/flags annotation,
// and then what the pod itself asks for (its CPU, memory and GPUs, and the user it runs as). Later flags win
// whatever their spelling (-c and --cpus-per-task are one flag).
func (s *settings) jobFlags(p *v1.Pod, flavorName string) ([]sbatchFlag, error) {
	base := []sbatchFlag{{Name: "job-name", Value: string(p.UID), HasValue: true}}
	if s.DefaultCPUs > 0 {
		base = append(base, cpusFlag(s.DefaultCPUs*1_000_000_000))
	}
	if s.defaultMemoryBytes > 0 {
		base = append(base, memFlag(s.defaultMemoryBytes))
	}
	var flavor []sbatchFlag
	var uid *int64 = s.DefaultUID
	if flavorName != "" {
		f := s.Flavors[flavorName]
		if f.CPUDefault > 0 {
			flavor = append(flavor, cpusFlag(f.CPUDefault*1_000_000_000))
		}
		if f.memoryBytes > 0 {
			flavor = append(flavor, memFlag(f.memoryBytes))
		}
		flavor = append(flavor, f.flags...)
		if f.UID != nil {
			uid = f.UID
		}
	}
	var annotated []sbatchFlag
	if text, ok := p.Annotations[AnnotationFlags]; ok {
		var err error
		if annotated, err = parseSbatchFlagText(text, true); err != nil {
			return nil, fmt.Errorf("annotation %s: %w", AnnotationFlags, err)
		}
	}
	merged := mergeFlags(base, s.flags, flavor, annotated)

	var own []sbatchFlag
	res := podJobResources(p)
	if res.CPUNano > 0 {
		own = append(own, cpusFlag(res.CPUNano))
	}
	if res.MemoryBytes > 0 {
		own = append(own, memFlag(res.MemoryBytes))
	}
	if res.GPUs > 0 {
		// A flavor or annotation that already asks for this many GPUs (perhaps of a given type) is kept.
		have, ok := findFlag(merged, "gres")
		if m := gresGPU.FindStringSubmatch(have.Value); !ok || m == nil || m[1] != strconv.FormatInt(res.GPUs, 10) {
			own = append(own, sbatchFlag{Name: "gres", Value: "gpu:" + strconv.FormatInt(res.GPUs, 10), HasValue: true})
		}
	}
	if sc := p.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
		if *sc.RunAsUser < 0 {
			return nil, fmt.Errorf("spec.securityContext.runAsUser: %d is not a user id", *sc.RunAsUser)
		}
		uid = sc.RunAsUser
	}
	if uid != nil {
		own = append(own, sbatchFlag{Name: "uid", Value: strconv.FormatInt(*uid, 10), HasValue: true})
	}
	return mergeFlags(merged, own), nil
}
