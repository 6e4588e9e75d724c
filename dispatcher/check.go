package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// CheckResult is what `interlink-dispatcher check` found of one enabled backend.
type CheckResult struct {
	Name        string
	Description backend.Description // as the backend answered Describe; empty when it did not start
	Capacity    *backend.Capacity   // nil when it did not start or its engine did not answer
	Err         error               // what is wrong; nil when the backend started and reported its capacity
	// Beside is set when a running process (a dispatcher's backend, normally) holds the backend's data
	// directory: the check ran beside it, on a scratch directory, and touched nothing of it.
	Beside string
}

// OK reports whether the backend started, described itself and reported its capacity.
func (r CheckResult) OK() bool { return r.Err == nil }

// Line is the result as one line: the backend's name, then its version, engine and capacity, or what is
// wrong.
func (r CheckResult) Line() string {
	var b strings.Builder
	if r.OK() {
		fmt.Fprintf(&b, "%s: ok: version %s, engine %s, capacity %s", r.Name, r.Description.Version,
			r.Description.Engine, capacityText(r.Capacity))
	} else {
		fmt.Fprintf(&b, "%s: FAILED: %s", r.Name, oneLine(r.Err.Error()))
	}
	if r.Beside != "" {
		fmt.Fprintf(&b, " (%s)", r.Beside)
	}
	return b.String()
}

// CheckBackends launches every enabled backend of cfg through launch, as the supervisor does (the same
// LaunchSpec, start timeout and Describe), asks it for its capacity within timeouts.ping, and stops it;
// the results come in config order. It changes nothing a dispatcher on the same config owns: each backend
// runs on a scratch data directory, removed afterwards, with backend.Env.Check set (so that it recovers
// none of the pods its own config may point it to), and the journal is not opened. A backend data
// directory that a running process holds is only noted (see backend.DataDirHolder): that process is
// neither waited for nor stopped.
func CheckBackends(ctx context.Context, cfg Config, launch Launcher, log *slog.Logger) ([]CheckResult, error) {
	specs, err := launchSpecs(cfg, log)
	if err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp("", "interlink-dispatcher-check-")
	if err != nil {
		return nil, fmt.Errorf("cannot make a scratch directory for the backends: %w", err)
	}
	defer os.RemoveAll(scratch)

	results := make([]CheckResult, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		results[i].Name = spec.Name
		real := spec.Env.DataDir
		if pid, held, err := backend.DataDirHolder(real); err != nil {
			results[i].Beside = fmt.Sprintf("cannot tell whether a dispatcher runs on %s: %v", real, err)
		} else if held {
			who := "a process"
			if pid != 0 {
				who = fmt.Sprintf("pid %d", pid)
			}
			results[i].Beside = fmt.Sprintf("a running dispatcher's backend (%s) holds its data directory %s: "+
				"checked beside it, on a scratch directory, without stopping or touching it", who, real)
		}
		spec.Env.DataDir = filepath.Join(scratch, spec.Name)
		spec.Env.Check = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].Description, results[i].Capacity, results[i].Err = checkBackend(ctx, cfg, launch, spec)
		}()
	}
	wg.Wait()
	return results, nil
}

func checkBackend(ctx context.Context, cfg Config, launch Launcher, spec LaunchSpec) (backend.Description, *backend.Capacity, error) {
	inst, desc, err := startBackend(ctx, launch, cfg.Supervision.StartTimeout, spec)
	if err != nil {
		return desc, nil, err
	}
	defer inst.Stop()
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeouts.Ping)
	defer cancel()
	c, err := inst.Capacity(pctx)
	if err != nil {
		return desc, nil, fmt.Errorf("backend %q started (version %s, engine %s) but cannot report its capacity "+
			"within timeouts.ping (%s), so its engine does not answer: %w", spec.Name, desc.Version, desc.Engine, cfg.Timeouts.Ping, err)
	}
	return desc, &c, nil
}

// capacityText is a capacity as an operator reads it: "cpu 2, memory 7.8Gi, pods 110, nvidia.com/gpu 1";
// what the backend could not tell is left out.
func capacityText(c *backend.Capacity) string {
	if c == nil {
		return "unknown"
	}
	var parts []string
	if c.CPUMilli != nil {
		parts = append(parts, "cpu "+resource.NewMilliQuantity(*c.CPUMilli, resource.DecimalSI).String())
	}
	if c.MemoryBytes != nil {
		parts = append(parts, "memory "+bytesText(*c.MemoryBytes))
	}
	if c.Pods != nil {
		parts = append(parts, fmt.Sprintf("pods %d", *c.Pods))
	}
	names := make([]string, 0, len(c.Accelerators))
	for n := range c.Accelerators {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, c.Accelerators[n]))
	}
	if len(c.Taints) > 0 {
		taints := make([]string, len(c.Taints))
		for i, t := range c.Taints {
			taints[i] = t.ToString()
		}
		parts = append(parts, "taints "+strings.Join(taints, ","))
	}
	if len(parts) == 0 {
		return "not reported"
	}
	return strings.Join(parts, ", ")
}

// bytesText is n bytes in the largest binary unit that leaves at least 1 of it, to a tenth: "23.6Gi".
func bytesText(n int64) string {
	v, units := float64(n), []string{"", "Ki", "Mi", "Gi", "Ti", "Pi"}
	i := 0
	for ; v >= 1024 && i < len(units)-1; i++ {
		v /= 1024
	}
	if i == 0 {
		return fmt.Sprintf("%d", n)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + units[i]
}

// oneLine joins a multi-line message (go-plugin's explanation of a failed handshake is one) into one line.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}
