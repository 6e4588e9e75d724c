package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// Instance is one running backend process as the supervisor holds it; *backend.Process is one.
type Instance interface {
	backend.Backend
	// Description is what the backend answered to Describe when it was launched (a Launcher checks its
	// protocol version there): the supervisor does not ask again.
	Description() backend.Description
	// Done is closed when the process has exited.
	Done() <-chan struct{}
	// Stop stops the process gracefully and returns when it has exited.
	Stop()
}

// LaunchSpec is what a Launcher needs to start one backend: backend.LaunchConfig's fields.
type LaunchSpec struct {
	Name   string
	Path   string
	Args   []string
	Env    backend.Env
	SHA256 string
	Logger *slog.Logger // the backend's stderr lines are re-emitted through it
}

// Launcher starts a backend process and returns it once it has answered Describe. The command's launcher
// wraps backend.Launch; tests may launch whatever they need behind the same seam.
type Launcher func(ctx context.Context, spec LaunchSpec) (Instance, error)

// BackendState is one backend's state as the supervisor sees it, e.g. for /readyz.
type BackendState struct {
	Name      string    `json:"name"`
	Up        bool      `json:"up"`
	Version   string    `json:"version,omitempty"`
	Engine    string    `json:"engine,omitempty"`
	LastError string    `json:"lastError,omitempty"`
	Restarts  int       `json:"restarts"`
	Since     time.Time `json:"since"` // when Up last changed
	// EngineError is why the last health check of a backend that is up failed ("" while it answers): the
	// process runs, but its engine does not answer.
	EngineError string `json:"engineError,omitempty"`
	// Capacity is what the last health check of a backend that is up reported; nil while unknown.
	Capacity *backend.Capacity `json:"-"`
	// Misconfigured is why a backend that exited with backend.ExitBadConfig is not restarted ("" otherwise).
	Misconfigured string `json:"misconfigured,omitempty"`
}

// Supervisor runs every enabled backend, restarts one that exits with a doubling, capped backoff, and
// hands out the ones that are up.
type Supervisor struct {
	launch Launcher
	cfg    SupervisionConfig
	// healthTimeout bounds each health check (timeouts.ping: the same Capacity call the ping makes).
	healthTimeout time.Duration
	// onUpWait bounds the wait for an OnUp call to return once its process is gone or the dispatcher stops
	// (timeouts.shutdown).
	onUpWait time.Duration
	log      *slog.Logger
	obs      Observer
	// OnUp runs (in its own goroutine) each time a backend comes up, with a context cancelled when that
	// process goes away; the server reconciles the journal with the backend's List there. The process is
	// stopped (and Stop returns) only once OnUp has returned or onUpWait has passed.
	OnUp func(ctx context.Context, name string, b backend.Backend)

	slots  map[string]*slot
	order  []string
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type slot struct {
	spec LaunchSpec

	mu       sync.RWMutex
	b        backend.Backend // nil while down
	desc     backend.Description
	lastErr  error
	restarts int
	since    time.Time
	// engineErr is the failure of the last health check of the running process; nil while it answers.
	engineErr error
	// capacity is what the last health check reported; nil while down or degraded.
	capacity *backend.Capacity
	// misconfigured is set, for good, when the process exited with backend.ExitBadConfig: it is not
	// started again, since only a fixed config (and a restart of the dispatcher) can change that.
	misconfigured *backend.BadConfigError
}

// NewSupervisor prepares (without starting) the enabled backends of cfg.
func NewSupervisor(cfg Config, launch Launcher, log *slog.Logger, obs Observer) (*Supervisor, error) {
	if obs == nil {
		obs = NopObserver{}
	}
	s := &Supervisor{launch: launch, cfg: cfg.Supervision, healthTimeout: cfg.Timeouts.Ping, onUpWait: cfg.Timeouts.Shutdown, log: log, obs: obs, slots: map[string]*slot{}}
	if s.onUpWait <= 0 {
		s.onUpWait = DefaultConfig().Timeouts.Shutdown // a Config built by hand: still bounded, still waited for
	}
	specs, err := launchSpecs(cfg, log)
	if err != nil {
		return nil, err
	}
	for _, spec := range specs {
		s.slots[spec.Name] = &slot{
			spec:    spec,
			lastErr: fmt.Errorf("backend %q is starting", spec.Name),
			since:   time.Now(),
		}
		s.order = append(s.order, spec.Name)
	}
	return s, nil
}

// launchSpecs are the launches of cfg's enabled backends, in config order: what the supervisor starts, and
// what `interlink-dispatcher check` tries.
func launchSpecs(cfg Config, log *slog.Logger) ([]LaunchSpec, error) {
	var specs []LaunchSpec
	for _, b := range cfg.Backends {
		if !b.IsEnabled() {
			continue
		}
		conf := b.Config
		if conf == nil {
			conf = map[string]any{}
		}
		raw, err := json.Marshal(conf)
		if err != nil {
			return nil, fmt.Errorf("config key backends.%s.config cannot be passed to the backend as JSON: %w", b.Name, err)
		}
		specs = append(specs, LaunchSpec{
			Name: b.Name, Path: b.Binary, Args: b.Args, SHA256: b.SHA256,
			Env: backend.Env{
				Name: b.Name, Instance: cfg.Instance, Config: raw,
				DataDir: filepath.Join(cfg.DataDir, "backends", b.Name),
			},
			Logger: log, // the launcher tags the backend's lines with its name
		})
	}
	return specs, nil
}

// Start launches every backend in the background; each is available once it has answered Describe.
func (s *Supervisor) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	for _, name := range s.order {
		sl := s.slots[name]
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, sl)
		}()
	}
}

// Stop stops every backend gracefully and returns when all have exited.
func (s *Supervisor) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// run keeps one backend running until ctx ends.
func (s *Supervisor) run(ctx context.Context, sl *slot) {
	name := sl.spec.Name
	wait := s.cfg.BackoffInitial
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.obs.BackendRestart(name)
			sl.mu.Lock()
			sl.restarts++
			sl.mu.Unlock()
		}
		started := time.Now()
		inst, desc, err := s.start(ctx, sl.spec)
		var bad *backend.BadConfigError
		switch {
		case err == nil:
			if exit := s.serve(ctx, sl, inst, desc); errors.As(exit, &bad) && ctx.Err() == nil {
				s.misconfigured(ctx, sl, bad)
				return
			}
			if time.Since(started) >= s.cfg.StableAfter {
				wait = s.cfg.BackoffInitial
			}
		case errors.As(err, &bad) && ctx.Err() == nil:
			s.misconfigured(ctx, sl, bad)
			return
		case ctx.Err() == nil:
			sl.setDown(err)
			s.log.Error("backend failed to start", "backend", name, "err", err, "retry_in", wait)
		}
		if ctx.Err() != nil {
			sl.setDown(fmt.Errorf("the dispatcher is shutting down"))
			return
		}
		select {
		case <-ctx.Done():
			sl.setDown(fmt.Errorf("the dispatcher is shutting down"))
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, s.cfg.BackoffMax)
	}
}

// misconfigured marks sl's backend misconfigured, says so once in the log, and holds it so (never
// restarting it) until ctx ends.
func (s *Supervisor) misconfigured(ctx context.Context, sl *slot, bad *backend.BadConfigError) {
	sl.mu.Lock()
	sl.b, sl.lastErr, sl.engineErr, sl.capacity, sl.misconfigured = nil, bad, nil, nil, bad
	sl.since = time.Now()
	sl.mu.Unlock()
	s.log.Error("backend misconfigured: it exited with status 78 (EX_CONFIG) and is not restarted; fix its config and restart the dispatcher",
		"backend", sl.spec.Name, "err", bad.Reason)
	<-ctx.Done()
}

// start launches the process, which describes itself as it starts, within the start timeout.
func (s *Supervisor) start(ctx context.Context, spec LaunchSpec) (Instance, backend.Description, error) {
	return startBackend(ctx, s.launch, s.cfg.StartTimeout, spec)
}

// startBackend makes the backend's data directory, launches its process and asks it to describe itself,
// all within timeout.
func startBackend(ctx context.Context, launch Launcher, timeout time.Duration, spec LaunchSpec) (Instance, backend.Description, error) {
	if err := os.MkdirAll(spec.Env.DataDir, 0o700); err != nil {
		return nil, backend.Description{}, fmt.Errorf("cannot create backend %q's directory %s: %w; check data_dir", spec.Name, spec.Env.DataDir, err)
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	inst, err := launch(sctx, spec)
	if err != nil {
		return nil, backend.Description{}, err
	}
	return inst, inst.Description(), nil
}

// badConfigExit is what an Instance that can tell (a *backend.Process) says of its exit: a
// *backend.BadConfigError for an exit with backend.ExitBadConfig.
type badConfigExit interface{ BadConfig() error }

// serve holds inst as the backend of sl until the process exits or ctx ends. It returns the
// *backend.BadConfigError of a process that exited with backend.ExitBadConfig, nil otherwise.
func (s *Supervisor) serve(ctx context.Context, sl *slot, inst Instance, desc backend.Description) error {
	name := sl.spec.Name
	b := observed{Backend: inst, name: name, obs: s.obs}
	sl.mu.Lock()
	sl.b, sl.desc, sl.lastErr, sl.since = b, desc, nil, time.Now()
	sl.mu.Unlock()
	s.obs.BackendUp(name, true)
	s.log.Info("backend up", "backend", name, "version", desc.Version, "engine", desc.Engine)

	upCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	onUpDone := make(chan struct{})
	go func() {
		defer close(onUpDone)
		if s.OnUp != nil {
			s.OnUp(upCtx, name, b)
		}
	}()
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		s.watchHealth(upCtx, sl, b)
	}()
	exited := false
	var badExit error
	select {
	case <-inst.Done():
		exited = true
		if bc, ok := inst.(badConfigExit); ok {
			badExit = bc.BadConfig()
		}
		if badExit != nil {
			sl.setDown(badExit) // run marks it misconfigured, and logs it, next
			break
		}
		sl.setDown(fmt.Errorf("backend %q exited; the dispatcher is restarting it", name))
		s.log.Error("backend exited", "backend", name)
	case <-ctx.Done():
		sl.setDown(fmt.Errorf("the dispatcher is shutting down"))
	}
	s.obs.BackendUp(name, false)
	cancel()
	<-healthDone // no check of this process outlives it
	// Nor its reconciliation, within a bound: after a shutdown the journal is closed next.
	s.awaitOnUp(name, onUpDone)
	inst.Stop() // after an exit, releases what the launcher holds for the dead process
	if !exited {
		s.log.Info("backend stopped", "backend", name)
	}
	return badExit
}

// awaitOnUp waits up to onUpWait for the OnUp call of a process that is gone (its context cancelled) to
// return. One that does not is left to end by itself: cancelled, it writes nothing more (see Reconcile).
func (s *Supervisor) awaitOnUp(name string, done <-chan struct{}) {
	t := time.NewTimer(s.onUpWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("the reconciliation of a stopped backend did not end within timeouts.shutdown; not waiting for it any longer",
			"backend", name, "timeout", s.onUpWait)
	}
}

func (sl *slot) setDown(err error) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.b != nil {
		sl.since = time.Now()
	}
	sl.b, sl.lastErr, sl.engineErr, sl.capacity = nil, err, nil, nil
}

// watchHealth asks the running backend b for its Capacity, which reaches its engine, at once and then every
// supervision.health_interval, each within timeouts.ping, until ctx ends: a process that runs while its
// engine does not answer is degraded, which /readyz reports.
func (s *Supervisor) watchHealth(ctx context.Context, sl *slot, b backend.Backend) {
	name := sl.spec.Name
	t := time.NewTicker(s.cfg.HealthInterval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, s.healthTimeout)
		capa, err := b.Capacity(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && cctx.Err() != nil {
			err = fmt.Errorf("its engine did not answer within %s (timeouts.ping): %w", s.healthTimeout, err)
		}
		sl.mu.Lock()
		if sl.b == nil {
			// Down since the call began: down says it all, and a degraded mark set now would outlive it.
			sl.mu.Unlock()
			return
		}
		was := sl.engineErr
		sl.engineErr, sl.capacity = err, nil
		if err == nil {
			sl.capacity = &capa
		}
		sl.mu.Unlock()
		switch {
		case err != nil && was == nil:
			s.log.Warn("backend degraded: its engine does not answer", "backend", name, "err", err)
			s.obs.BackendHealth(name, false)
		case err == nil && was != nil:
			s.log.Info("backend's engine answers again", "backend", name)
			s.obs.BackendHealth(name, true)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Backend returns the named backend and its capabilities if it is up. The error is a KindUnavailable
// sentence while it is down, and KindInvalid for a name that is not an enabled backend.
func (s *Supervisor) Backend(name string) (backend.Backend, backend.Capabilities, error) {
	sl, ok := s.slots[name]
	if !ok {
		return nil, backend.Capabilities{}, backend.Invalid("backend %q is not an enabled backend of this dispatcher", name)
	}
	sl.mu.RLock()
	defer sl.mu.RUnlock()
	if sl.misconfigured != nil {
		return nil, backend.Capabilities{}, backend.Unavailable("%v; it is not restarted until its config is fixed", sl.misconfigured)
	}
	if sl.b == nil {
		return nil, backend.Capabilities{}, backend.Unavailable("backend %q is unavailable (%v); retry in a minute", name, sl.lastErr)
	}
	return sl.b, sl.desc.Capabilities, nil
}

// Exited tells whether the process behind b (a backend Backend handed out) has exited, waiting up to
// within for it to be seen gone: a call that failed because its process died lost its answer, which a
// backend's own refusal did not.
func (s *Supervisor) Exited(b backend.Backend, within time.Duration) bool {
	inst := instanceOf(b)
	if inst == nil {
		return false
	}
	select {
	case <-inst.Done():
		return true
	default:
	}
	if within <= 0 {
		return false
	}
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-inst.Done():
		return true
	case <-t.C:
		return false
	}
}

// Replaced waits until backend name is up in another process than the one behind prev, and returns it.
func (s *Supervisor) Replaced(ctx context.Context, name string, prev backend.Backend) (backend.Backend, error) {
	old := instanceOf(prev)
	for {
		b, _, err := s.Backend(name)
		if err == nil && instanceOf(b) != old {
			return b, nil
		}
		if err != nil && backend.KindOf(err) == backend.KindInvalid {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, backend.Unavailable("backend %q is not back up (%v)", name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// instanceOf is the process behind a Backend the supervisor handed out, nil for any other Backend.
func instanceOf(b backend.Backend) Instance {
	if o, ok := b.(observed); ok {
		if inst, ok := o.Backend.(Instance); ok {
			return inst
		}
	}
	return nil
}

// Names lists the enabled backends in config order.
func (s *Supervisor) Names() []string { return append([]string(nil), s.order...) }

// States reports every enabled backend's state in config order.
func (s *Supervisor) States() []BackendState {
	out := make([]BackendState, 0, len(s.order))
	for _, name := range s.order {
		sl := s.slots[name]
		sl.mu.RLock()
		st := BackendState{Name: name, Up: sl.b != nil, Restarts: sl.restarts, Since: sl.since}
		if sl.b != nil {
			st.Version, st.Engine = sl.desc.Version, sl.desc.Engine
		}
		if sl.lastErr != nil {
			st.LastError = sl.lastErr.Error()
		}
		if sl.engineErr != nil {
			st.EngineError = sl.engineErr.Error()
		}
		st.Capacity = sl.capacity
		if sl.misconfigured != nil {
			st.Misconfigured = sl.misconfigured.Error()
		}
		sl.mu.RUnlock()
		out = append(out, st)
	}
	return out
}

// WaitUp waits until every named backend (all when none is named) is up, or ctx ends.
func (s *Supervisor) WaitUp(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		names = s.order
	}
	for {
		down := ""
		for _, n := range names {
			if _, _, err := s.Backend(n); err != nil {
				down = err.Error()
				break
			}
		}
		if down == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s (%w)", down, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// LaunchProcess is the Launcher of real backend binaries, through backend.Launch (go-plugin, AutoMTLS, the
// versioned handshake and the optional checksum).
func LaunchProcess(ctx context.Context, spec LaunchSpec) (Instance, error) {
	p, err := backend.Launch(ctx, backend.LaunchConfig{
		Name: spec.Name, Path: spec.Path, Args: spec.Args, Env: spec.Env, SHA256: spec.SHA256, Logger: spec.Logger,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}
