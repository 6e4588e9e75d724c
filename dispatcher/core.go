package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/keyed"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// ValidateFunc checks a pod against a backend's capabilities and returns a backend.KindInvalid error naming
// the field paths it cannot honour.
type ValidateFunc func(p *v1.Pod, caps backend.Capabilities, backendName string) error

// Core is what the dispatcher decides, free of HTTP: where a pod goes (routing and the journal), one
// create or delete of a pod UID at a time, the status cache and its fallback when a backend cannot answer,
// pods the journal does not know, reconciliation with what the backends run, and the supervised backends'
// health. The interLink routes, the admin API and tests call the same methods; the HTTP layer (Server) only
// decodes, calls and encodes.
//
// Its errors carry what went wrong as a kind a caller can act on: *RequestError (a malformed request, which
// names no pod), *RouteError (a pod naming a backend this dispatcher does not run), backend.KindInvalid,
// KindNotFound and KindUnavailable errors, and anything else for a fault of the dispatcher or a backend.
type Core struct {
	cfg      Config
	journal  *Journal
	backends *Supervisor
	router   *Router
	log      *slog.Logger
	obs      Observer
	validate ValidateFunc
	policies map[string]backendPolicy // by backend name: what the operator allows its pods on the host

	locks keyed.Mutex // serialises create and delete of one pod UID: a retried create racing the first cannot journal twice or race a delete

	// abandoned are pods whose create lost its answer with the backend down for good: see createAgain.
	abandonedMu sync.Mutex
	abandoned   map[string]abandonedPod
	// refused are the answers of failed creates, reported as the status of those pods (unknown.go).
	refused refusals
	// asked are the first status requests for pods not known yet, whose create may be on its way (unknown.go).
	asked asks

	// rememberMu is held for reading by remember from its journal write to its memory update (remembers run
	// at once, and share the journal's fsync), and for writing by journalDelete before it forgets a pod's
	// memory: see remember.
	rememberMu sync.RWMutex
	statusMu   sync.Mutex
	lastStatus map[string]interlink.PodStatus // last status per journaled pod UID
	statusAt   map[string]time.Time           // when each of lastStatus was last answered
	// seenRunning holds the journaled pods seen past Pending, so that create-to-running is observed once.
	seenRunning map[string]bool
}

// NewCore builds the core over o's journal and supervisor and loads the last known statuses from the
// journal. It wires itself as the supervisor's OnUp so that every backend start reconciles the journal.
// Options.Routes is for the HTTP layer and is not read here.
func NewCore(o Options) (*Core, error) {
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	if o.Validate == nil {
		o.Validate = pod.Validate
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Core{
		cfg: o.Config, journal: o.Journal, backends: o.Backends, log: o.Logger, obs: o.Observer,
		validate: o.Validate, policies: policies(o.Config.Backends),
		router:     NewRouter(o.Config.Routing, o.Config.Backends),
		lastStatus: map[string]interlink.PodStatus{}, statusAt: map[string]time.Time{}, seenRunning: map[string]bool{},
	}
	entries, err := o.Journal.All()
	if err != nil {
		return nil, fmt.Errorf("cannot read the journal: %w; move the file %s aside to start afresh (pods are found again through the backends)", err, filepath.Join(o.Config.DataDir, "journal.db"))
	}
	for _, e := range entries {
		if e.LastStatus != nil {
			c.lastStatus[e.UID], c.statusAt[e.UID] = *e.LastStatus, e.StatusTime
			if pod.Phase(*e.LastStatus) != v1.PodPending {
				c.seenRunning[e.UID] = true
			}
		}
	}
	if err := c.refused.load(o.Journal, o.Logger, time.Now()); err != nil {
		return nil, fmt.Errorf("cannot read the journal's refused creates: %w", err)
	}
	o.Backends.OnUp = c.Reconcile
	return c, nil
}

// RequestError is a request the core refuses as malformed before it looks anything up (a pod without a
// UID, a name Kubernetes would refuse): it names no pod this dispatcher knows.
type RequestError struct{ msg string }

func (e *RequestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &RequestError{fmt.Sprintf(format, args...)}
}

// IsRequestError tells whether err is a *RequestError.
func IsRequestError(err error) bool {
	var re *RequestError
	return errors.As(err, &re)
}

// outcomeOfErr is the outcome of a create or delete that ended with err, as the metrics count it: what its
// HTTP answer's status code (statusOf) says.
func outcomeOfErr(err error) string {
	var route *RouteError
	switch {
	case err == nil:
		return OutcomeOK
	case IsRequestError(err), errors.As(err, &route):
		return OutcomeRejected
	}
	switch backend.KindOf(err) {
	case backend.KindInvalid, backend.KindNotFound:
		return OutcomeRejected
	case backend.KindUnavailable:
		return OutcomeUnavailable
	default:
		return OutcomeError
	}
}

// journalPut writes the entry of a pod just created, with the pod, and tells the observer how long it took.
func (c *Core) journalPut(e Entry, p *v1.Pod) error {
	start := time.Now()
	err := c.journal.PutCreated(e, p)
	c.obs.JournalWrite(time.Since(start), err)
	return err
}

func (c *Core) journalDelete(uid string) error {
	start := time.Now()
	err := c.journal.Delete(uid)
	c.obs.JournalWrite(time.Since(start), err)
	// After the entry is gone: a status remembered meanwhile is then forgotten here, and one remembered
	// later finds no entry and is not kept.
	c.rememberMu.Lock()
	c.statusMu.Lock()
	delete(c.lastStatus, uid)
	delete(c.statusAt, uid)
	delete(c.seenRunning, uid)
	c.statusMu.Unlock()
	c.rememberMu.Unlock()
	return err
}

// locate finds the backend of a pod: its journal entry first (without its last status, which memory has),
// then routing. err is a *RouteError when no backend can be named.
func (c *Core) locate(p *v1.Pod) (name string, entry Entry, journaled bool, err error) {
	return c.locateFrom(p, c.journal.HeadsOf([]string{string(p.UID)})[0])
}

// locateFrom is locate with the pod's journal entry read already.
func (c *Core) locateFrom(p *v1.Pod, h HeadOf) (name string, entry Entry, journaled bool, err error) {
	switch {
	case h.Err != nil:
		return "", Entry{}, false, fmt.Errorf("cannot read the journal: %w", h.Err)
	case h.Found:
		return h.Entry.Backend, h.Entry, true, nil
	}
	rt, err := c.router.Route(p)
	if err != nil {
		return "", Entry{}, false, err
	}
	return rt.Backend, Entry{}, false, nil
}

// lastKnown is the last known status of a journaled pod and when it was answered: from memory, which holds
// every status recorded since the Core was built from the journal, else the one its entry holds (none for
// an entry read with Journal.Heads). The caller holds statusMu.
func (c *Core) lastKnown(e Entry) (interlink.PodStatus, time.Time, bool) {
	if st, ok := c.lastStatus[e.UID]; ok {
		return st, c.statusAt[e.UID], true
	}
	if e.LastStatus != nil {
		return *e.LastStatus, e.StatusTime, true
	}
	return interlink.PodStatus{}, time.Time{}, false
}

// podCounts reports the journaled pods by backend and phase (from their last known status; Pending until one
// is known) and their total, for the metrics.
func (c *Core) podCounts() (map[string]map[v1.PodPhase]int, int, error) {
	entries, err := c.journal.Heads()
	if err != nil {
		return nil, 0, err
	}
	out := map[string]map[v1.PodPhase]int{}
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	for _, e := range entries {
		phase := v1.PodPending
		if st, _, ok := c.lastKnown(e); ok {
			phase = pod.Phase(st)
		}
		if out[e.Backend] == nil {
			out[e.Backend] = map[v1.PodPhase]int{}
		}
		out[e.Backend][phase]++
	}
	return out, len(entries), nil
}
