package docker

import (
	"context"
	"os"
	"regexp"
	"time"

	"github.com/docker/docker/api/types/system"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// Capacity reports the engine host's CPUs, memory and GPUs, and the configured pod limit.
func (b *Backend) Capacity(ctx context.Context) (backend.Capacity, error) {
	start := time.Now()
	info, err := b.cli.Info(ctx)
	b.metrics.observe("info", start, err)
	if err != nil {
		return backend.Capacity{}, engineError("cannot read the engine's resources", err)
	}
	var c backend.Capacity
	if info.NCPU > 0 {
		cpu := int64(info.NCPU) * 1000
		c.CPUMilli = &cpu
	}
	if info.MemTotal > 0 {
		mem := info.MemTotal
		c.MemoryBytes = &mem
	}
	pods := b.cfg.Pods
	c.Pods = &pods
	if b.gpus > 0 {
		c.Accelerators = map[string]int64{gpuResource: b.gpus}
	}
	return c, nil
}

var nvidiaDevice = regexp.MustCompile(`^nvidia[0-9]+$`)

// countGPUs is the configured GPU count, else the host's NVIDIA devices when the engine has the nvidia
// runtime to use them (the backend runs beside the engine it binds volumes into).
func countGPUs(cfg Config, info system.Info) int64 {
	if cfg.GPUs != nil {
		return *cfg.GPUs
	}
	if _, ok := info.Runtimes["nvidia"]; !ok {
		return 0
	}
	entries, err := os.ReadDir("/dev")
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if nvidiaDevice.MatchString(e.Name()) {
			n++
		}
	}
	return n
}
