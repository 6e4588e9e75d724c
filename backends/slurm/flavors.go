package slurm

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Pod annotations of interLink's reference SLURM plugin, which SLURM users already put on their pods, plus
// the runtime choice this backend adds.
const (
	AnnotationFlags              = "slurm-job.vk.io/flags"
	AnnotationFlavor             = "slurm-job.vk.io/flavor"
	AnnotationPreExec            = "slurm-job.vk.io/pre-exec"
	AnnotationMPIFlags           = "slurm-job.vk.io/mpi-flags"
	AnnotationImageRoot          = "slurm-job.vk.io/image-root"
	AnnotationSingularityOptions = "slurm-job.vk.io/singularity-options"
	AnnotationSingularityMounts  = "slurm-job.vk.io/singularity-mounts"
	AnnotationEnrootOptions      = "slurm-job.vk.io/enroot-options"
	AnnotationEnrootMounts       = "slurm-job.vk.io/enroot-mounts"
	AnnotationRuntime            = "slurm-job.vk.io/runtime"
	AnnotationWstunnel           = "interlink.eu/wstunnel-client-commands"
)

// GPU resource names that become --gres=gpu:N.
var gpuResources = []v1.ResourceName{"nvidia.com/gpu", "amd.com/gpu"}

// podGPUs is the number of GPUs the pod needs at once (summed over its containers, the largest init
// container when more).
func podGPUs(p *v1.Pod) int64 {
	r := pod.PodResources(p)
	var n int64
	for _, name := range gpuResources {
		n += r.Extended[name]
	}
	return n
}

var gresGPU = regexp.MustCompile(`(?:^|,)gpu(?::[^:,]+)?:(\d+)`)

// flavorGPUs returns how many GPUs a flavor's flags ask for (--gres=gpu[:type]:N or --gpus=N), and whether
// it asks for any at all.
func flavorGPUs(f Flavor) (int64, bool) {
	for _, fl := range f.flags {
		switch fl.Name {
		case "gres":
			if m := gresGPU.FindStringSubmatch(fl.Value); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				return n, true
			}
			if strings.Contains(fl.Value, "gpu") {
				return 0, true
			}
		case "gpus":
			v := fl.Value[strings.LastIndex(fl.Value, ":")+1:]
			n, _ := strconv.ParseInt(v, 10, 64)
			return n, true
		}
	}
	return 0, false
}

// resolveFlavor picks the pod's flavor: the one its slurm-job.vk.io/flavor annotation names (an unknown name
// is refused, not silently replaced), else for a pod asking for GPUs a GPU flavor (one asking for the same
// number first, then any, by name), else the default flavor. It returns "" when none applies.
func (s *settings) resolveFlavor(p *v1.Pod) (string, error) {
	if name, ok := p.Annotations[AnnotationFlavor]; ok {
		if _, found := s.Flavors[name]; !found {
			if len(s.Flavors) == 0 {
				return "", fmt.Errorf("annotation %s: flavor %q is not configured: this backend has no flavors", AnnotationFlavor, name)
			}
			return "", fmt.Errorf("annotation %s: flavor %q is not configured; the flavors are: %s", AnnotationFlavor, name, strings.Join(flavorNames(s.Flavors), ", "))
		}
		return name, nil
	}
	if gpus := podGPUs(p); gpus > 0 {
		names := flavorNames(s.Flavors)
		var anyGPU string
		for _, name := range names {
			n, isGPU := flavorGPUs(s.Flavors[name])
			if !isGPU && !strings.Contains(strings.ToLower(name), "gpu") {
				continue
			}
			if n == gpus {
				return name, nil
			}
			if anyGPU == "" {
				anyGPU = name
			}
		}
		if anyGPU != "" {
			return anyGPU, nil
		}
	}
	return s.DefaultFlavor, nil
}
