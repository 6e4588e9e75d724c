package dispatcher

import (
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/adminapi"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// The states of a backend, as /readyz and the admin API report them.
const (
	StateUp       = "up"
	StateDegraded = "degraded" // the process runs, its engine does not answer
	StateDown     = "down"
	StateDisabled = "disabled" // enabled: false in the config
	// StateMisconfigured is a backend that exited with backend.ExitBadConfig: not restarted until its
	// config is fixed.
	StateMisconfigured = "misconfigured"
)

// health is a running backend's state and, unless it is up, why, in one sentence.
func health(st BackendState) (state, why string) {
	switch {
	case st.Misconfigured != "":
		return StateMisconfigured, st.Misconfigured + "; it is not restarted until its config is fixed"
	case !st.Up:
		return StateDown, fmt.Sprintf("backend %q is down: %s", st.Name, st.LastError)
	case st.EngineError != "":
		return StateDegraded, fmt.Sprintf("backend %q is degraded: its process runs but its engine does not answer: %s", st.Name, st.EngineError)
	}
	return StateUp, ""
}

// Readiness is the body of /readyz.
type Readiness struct {
	Ready bool `json:"ready"`
	// Journal is "ok", or why the journal cannot be used.
	Journal  string          `json:"journal"`
	Backends []BackendReadyz `json:"backends"`
	Reasons  []string        `json:"reasons,omitempty"` // why not ready, one sentence each
}

// BackendReadyz is one enabled backend as /readyz lists it.
type BackendReadyz struct {
	Name      string `json:"name"`
	State     string `json:"state"` // "up", "degraded" (the process runs, its engine does not answer), "down" or "misconfigured"
	Version   string `json:"version,omitempty"`
	Engine    string `json:"engine,omitempty"`
	LastError string `json:"lastError,omitempty"`
	// EngineError is why a degraded backend's engine check failed.
	EngineError string    `json:"engineError,omitempty"`
	Restarts    int       `json:"restarts"`
	Since       time.Time `json:"since"` // when the process last went up or down
}

// Readiness reports whether the dispatcher can serve every pod: the journal is open and every enabled
// backend is up with an engine that answers its health check.
func (c *Core) Readiness() Readiness {
	rd := Readiness{Ready: true, Journal: "ok", Backends: []BackendReadyz{}}
	if err := c.journal.Check(); err != nil {
		rd.Ready = false
		rd.Journal = err.Error()
		rd.Reasons = append(rd.Reasons, fmt.Sprintf("the journal cannot be used: %v", err))
	}
	for _, st := range c.backends.States() {
		b := BackendReadyz{Name: st.Name, Version: st.Version, Engine: st.Engine, LastError: st.LastError,
			Restarts: st.Restarts, Since: st.Since}
		var why string
		b.State, why = health(st)
		if b.State == StateDegraded {
			b.EngineError = st.EngineError
		}
		if why != "" {
			rd.Ready = false
			rd.Reasons = append(rd.Reasons, why)
		}
		rd.Backends = append(rd.Backends, b)
	}
	return rd
}

// Backends lists every configured backend in config order: its state (as /readyz judges it; disabled ones
// too), version, engine, its capacity as its last health check reported it, and how many journaled pods it
// holds. It asks no backend anything.
func (c *Core) Backends() ([]adminapi.Backend, error) {
	entries, err := c.journal.Heads()
	if err != nil {
		return nil, fmt.Errorf("cannot read the journal: %w", err)
	}
	pods := map[string]int{}
	for _, e := range entries {
		pods[e.Backend]++
	}
	states := map[string]BackendState{}
	for _, st := range c.backends.States() {
		states[st.Name] = st
	}
	out := make([]adminapi.Backend, 0, len(c.cfg.Backends))
	for _, bc := range c.cfg.Backends {
		bi := adminapi.Backend{Name: bc.Name, Pods: pods[bc.Name]}
		st, running := states[bc.Name]
		if !running {
			bi.State, bi.Reason = StateDisabled, c.router.NotRunning(bc.Name)
			out = append(out, bi)
			continue
		}
		bi.State, bi.Reason = health(st)
		bi.Version, bi.Engine, bi.Restarts = st.Version, st.Engine, st.Restarts
		bi.Capacity = capacityInfo(st.Capacity)
		out = append(out, bi)
	}
	return out, nil
}

func capacityInfo(c *backend.Capacity) *adminapi.Capacity {
	if c == nil {
		return nil
	}
	ci := &adminapi.Capacity{}
	if c.CPUMilli != nil {
		ci.CPU = resource.NewMilliQuantity(*c.CPUMilli, resource.DecimalSI).String()
	}
	if c.MemoryBytes != nil {
		ci.Memory = resource.NewQuantity(*c.MemoryBytes, resource.BinarySI).String()
	}
	if c.Pods != nil {
		ci.Pods = strconv.FormatInt(*c.Pods, 10)
	}
	if len(c.Accelerators) > 0 {
		var n int64
		for _, v := range c.Accelerators {
			n += v
		}
		ci.GPUs = strconv.FormatInt(n, 10)
	}
	if *ci == (adminapi.Capacity{}) {
		return nil
	}
	return ci
}
