package dispatcher

import (
	"fmt"
	"time"
)

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
	State     string `json:"state"` // "up", "degraded" (the process runs, its engine does not answer) or "down"
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
		b := BackendReadyz{Name: st.Name, State: "up", Version: st.Version, Engine: st.Engine, LastError: st.LastError,
			Restarts: st.Restarts, Since: st.Since}
		switch {
		case !st.Up:
			b.State = "down"
			rd.Ready = false
			rd.Reasons = append(rd.Reasons, fmt.Sprintf("backend %q is down: %s", st.Name, st.LastError))
		case st.EngineError != "":
			b.State, b.EngineError = "degraded", st.EngineError
			rd.Ready = false
			rd.Reasons = append(rd.Reasons, fmt.Sprintf("backend %q is degraded: its process runs but its engine does not answer: %s", st.Name, st.EngineError))
		}
		rd.Backends = append(rd.Backends, b)
	}
	return rd
}
