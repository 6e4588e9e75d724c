package slurm

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// sinfoNode is the part of one node of `sinfo --json` (OpenAPI v0.0.38) the backend reads.
type sinfoNode struct {
	Name       string   `json:"name"`
	State      string   `json:"state"`
	StateFlags []string `json:"state_flags"`
	CPUs       int64    `json:"cpus"`
	RealMemory int64    `json:"real_memory"` // MiB
	Gres       string   `json:"gres"`
	Partitions []string `json:"partitions"`
}

// parseSinfo reads `sinfo --json` output.
func parseSinfo(data []byte) ([]sinfoNode, error) {
	var out struct {
		Nodes []json.RawMessage `json:"nodes"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("sinfo --json printed something that is not its JSON: %w", err)
	}
	nodes := make([]sinfoNode, 0, len(out.Nodes))
	for _, raw := range out.Nodes {
		var n sinfoNode
		if err := json.Unmarshal(raw, &n); err != nil {
			// Later OpenAPI versions give the state as a list and some numbers as objects.
			var m map[string]json.RawMessage
			if json.Unmarshal(raw, &m) != nil {
				return nil, fmt.Errorf("cannot read a node of sinfo --json: %w", err)
			}
			_ = json.Unmarshal(m["name"], &n.Name)
			_ = json.Unmarshal(m["cpus"], &n.CPUs)
			_ = json.Unmarshal(m["real_memory"], &n.RealMemory)
			_ = json.Unmarshal(m["gres"], &n.Gres)
			_ = json.Unmarshal(m["partitions"], &n.Partitions)
			var states []string
			if json.Unmarshal(m["state"], &states) == nil && len(states) > 0 {
				n.State, n.StateFlags = states[0], states[1:]
			}
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// usable says whether a node can run new jobs: not down, drained, failing or otherwise out of service.
func (n sinfoNode) usable() bool {
	switch strings.ToUpper(strings.TrimRight(n.State, "*~#!%$@^-")) {
	case "DOWN", "DRAIN", "DRAINED", "DRAINING", "FAIL", "FAILING", "FUTURE", "INVAL", "UNKNOWN", "MAINT", "REBOOT_ISSUED", "POWERED_DOWN", "POWER_DOWN":
		return false
	}
	for _, f := range n.StateFlags {
		switch strings.ToUpper(f) {
		case "DRAIN", "DRAINED", "DRAINING", "FAIL", "MAINTENANCE", "MAINT", "NOT_RESPONDING", "POWERED_DOWN", "POWER_DOWN", "REBOOT_REQUESTED":
			return false
		}
	}
	return true
}

// gresGPUs counts the GPUs in a node's gres string ("gpu:4", "gpu:a100:2(S:0-1),gpu:v100:1").
func gresGPUs(gres string) int64 {
	var n int64
	for _, item := range strings.Split(gres, ",") {
		item, _, _ = strings.Cut(item, "(")
		parts := strings.Split(strings.TrimSpace(item), ":")
		if len(parts) < 2 || parts[0] != "gpu" {
			continue
		}
		if c, err := strconv.ParseInt(parts[len(parts)-1], 10, 64); err == nil {
			n += c
		}
	}
	return n
}

// nodeCapacity sums the usable nodes of the configured partitions (all nodes when none is configured);
// matched counts the nodes of those partitions, usable or not.
func nodeCapacity(nodes []sinfoNode, partitions []string) (cpuMilli, memBytes, gpus int64, matched int) {
	for _, n := range nodes {
		if len(partitions) > 0 && !slices.ContainsFunc(n.Partitions, func(p string) bool { return slices.Contains(partitions, p) }) {
			continue
		}
		matched++
		if !n.usable() {
			continue
		}
		cpuMilli += n.CPUs * 1000
		memBytes += n.RealMemory << 20
		gpus += gresGPUs(n.Gres)
	}
	return
}

// Capacity implements backend.Backend: the CPUs, memory and GPUs of the usable nodes of the configured
// partitions from one `sinfo --json` (or the configured resource command), the configured pod count and
// taints. What cannot be told is left out, never reported as zero.
func (b *Backend) Capacity(ctx context.Context) (backend.Capacity, error) {
	c := backend.Capacity{Taints: b.cfg.Taints}
	if b.cfg.Pods > 0 {
		pods := b.cfg.Pods
		c.Pods = &pods
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(b.cfg.CommandTimeout))
	defer cancel()
	if b.cfg.resourceCommand != nil {
		return b.customCapacity(ctx, c)
	}
	b.metrics.sinfoCalls.Inc()
	b.metrics.engineCalls.WithLabelValues("sinfo").Inc()
	res, err := b.cfg.sinfo.run(ctx, "", "--json")
	if err != nil {
		return c, slurmError(err, "cannot read the cluster's nodes")
	}
	nodes, err := parseSinfo(res.Stdout)
	if err != nil {
		return c, backend.Errorf(backend.KindInternal, "%w", err)
	}
	cpu, mem, gpus, matched := nodeCapacity(nodes, b.cfg.Partitions)
	if matched == 0 {
		// No node at all (or none in the configured partitions) says nothing about the cluster: report it
		// unknown rather than zero, which would drain the virtual node.
		b.log.Warn("sinfo lists no node of the configured partitions; capacity left unknown", "partitions", b.cfg.Partitions)
		return c, nil
	}
	c.CPUMilli, c.MemoryBytes = &cpu, &mem
	if gpus > 0 {
		c.Accelerators = map[string]int64{"nvidia.com/gpu": gpus}
	}
	return c, nil
}

// customCapacity runs the configured resource command, which prints the ping's resources as JSON.
func (b *Backend) customCapacity(ctx context.Context, c backend.Capacity) (backend.Capacity, error) {
	res, err := b.cfg.resourceCommand.run(ctx, "")
	if err != nil {
		return c, backend.Errorf(backend.KindUnavailable, "the resource command failed: %w", err)
	}
	var r interlink.PingResources
	if err := json.Unmarshal(res.Stdout, &r); err != nil {
		return c, backend.Errorf(backend.KindInternal, "the resource command printed no JSON object of resources: %w", err)
	}
	parse := func(field, s string, milli bool) (*int64, error) {
		if s == "" {
			return nil, nil
		}
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return nil, backend.Errorf(backend.KindInternal, "the resource command's %s %q is not a quantity", field, s)
		}
		v := q.Value()
		if milli {
			v = q.MilliValue()
		}
		return &v, nil
	}
	if c.CPUMilli, err = parse("cpu", r.CPU, true); err != nil {
		return c, err
	}
	if c.MemoryBytes, err = parse("memory", r.Memory, false); err != nil {
		return c, err
	}
	if p, err := parse("pods", r.Pods, false); err != nil {
		return c, err
	} else if p != nil {
		c.Pods = p
	}
	for _, a := range r.Accelerators {
		v, err := parse(a.ResourceType, a.Available, false)
		if err != nil {
			return c, err
		}
		if v != nil {
			if c.Accelerators == nil {
				c.Accelerators = map[string]int64{}
			}
			c.Accelerators[a.ResourceType] = *v
		}
	}
	return c, nil
}
