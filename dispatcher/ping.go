package dispatcher

import (
	"context"
	"sort"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// Ping is the answer to interLink's ping, ready for JSON: the summed capacity of the backends that are up and answer within
// timeouts.ping, and the union of their taints. A resource no healthy backend reports is left out, never
// zero, since a zero capacity drains the virtual node.
func (c *Core) Ping(ctx context.Context) any {
	_, caps := askEveryBackend(ctx, c.backends, c.cfg.Timeouts.Ping, func(ctx context.Context, name string, b backend.Backend) *backend.Capacity {
		capa, err := b.Capacity(ctx)
		if err != nil {
			c.log.Warn("backend capacity unavailable; leaving it out of the ping", "backend", name, "err", err)
			return nil
		}
		return &capa
	})
	pr := sumCapacity(caps)
	for _, got := range caps {
		if got != nil {
			// Someone answered: an empty union must reach interLink as [] to clear taints a backend dropped,
			// which interlink.PingResponse's omitempty would leave out.
			if pr.Taints == nil {
				pr.Taints = []v1.Taint{}
			}
			return pingAnswer{Status: pr.Status, Resources: pr.Resources, Taints: pr.Taints}
		}
	}
	return pr
}

// pingAnswer is interlink.PingResponse with taints always written.
type pingAnswer struct {
	Status    string                   `json:"status"`
	Resources *interlink.PingResources `json:"resources,omitempty"`
	Taints    []v1.Taint               `json:"taints"`
}

// sumCapacity adds up capacities; nil entries are backends that could not tell.
func sumCapacity(caps []*backend.Capacity) interlink.PingResponse {
	var cpu, mem, pods *int64
	add := func(dst **int64, v *int64) {
		if v == nil {
			return
		}
		if *dst == nil {
			*dst = new(int64)
		}
		**dst += *v
	}
	acc := map[string]int64{}
	var taints []v1.Taint
	seen := map[string]bool{}
	for _, c := range caps {
		if c == nil {
			continue
		}
		add(&cpu, c.CPUMilli)
		add(&mem, c.MemoryBytes)
		add(&pods, c.Pods)
		for k, v := range c.Accelerators {
			acc[k] += v
		}
		for _, t := range c.Taints {
			key := t.Key + "\x00" + t.Value + "\x00" + string(t.Effect)
			if !seen[key] {
				seen[key] = true
				taints = append(taints, v1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
			}
		}
	}
	resp := interlink.PingResponse{Status: "ok", Taints: taints}
	res := &interlink.PingResources{}
	if cpu != nil && *cpu > 0 {
		res.CPU = resource.NewMilliQuantity(*cpu, resource.DecimalSI).String()
	}
	if mem != nil && *mem > 0 {
		res.Memory = resource.NewQuantity(*mem, resource.BinarySI).String()
	}
	if pods != nil && *pods > 0 {
		res.Pods = strconv.FormatInt(*pods, 10)
	}
	types := make([]string, 0, len(acc))
	for k := range acc {
		types = append(types, k)
	}
	sort.Strings(types)
	for _, k := range types {
		if acc[k] > 0 {
			res.Accelerators = append(res.Accelerators, interlink.Accelerator{ResourceType: k, Available: strconv.FormatInt(acc[k], 10)})
		}
	}
	if res.CPU != "" || res.Memory != "" || res.Pods != "" || len(res.Accelerators) > 0 {
		resp.Resources = res
	}
	return resp
}
