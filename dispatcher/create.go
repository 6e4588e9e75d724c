package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// CreateResult is what a create comes to: the backend's remote id of an accepted pod, and, once one is
// chosen, its backend (set on a refusal too, for the request log).
type CreateResult struct {
	RemoteID string
	Backend  string
	// Duplicate is a retry of an accepted create, answered from the journal: nothing was started.
	Duplicate bool
}

// Create routes, validates and creates one pod on its backend within timeouts.create, and journals it
// before it returns. A refused create changes nothing, and its error becomes the pod's status (unknown.go);
// a retry of an accepted one answers from the journal and starts nothing. Create may change the pod's grace
// periods (clampGrace).
func (c *Core) Create(ctx context.Context, data *interlink.RetrievedPodData) (res CreateResult, err error) {
	// Counted whatever the outcome; the backend label stays "none" until a configured backend is chosen, so
	// that a pod naming any backend it likes cannot add series.
	defer func() {
		chosen, outcome := res.Backend, outcomeOfErr(err)
		if chosen == "" {
			chosen = "none"
		}
		if res.Duplicate {
			outcome = OutcomeDuplicate
		}
		c.obs.PodCreated(chosen, outcome)
	}()
	p := &data.Pod
	uid := string(p.UID)
	if uid == "" {
		return res, badRequest("the pod has no metadata.uid; send the pod as the virtual kubelet has it, with its UID")
	}
	// Names reach the engines (container names, labels, directories): refuse what Kubernetes would refuse
	// before anything else reads them.
	if cerr := checkPodNames(p); cerr != nil {
		return res, &RequestError{cerr.Error()}
	}
	unlock := c.locks.Lock(uid)
	defer unlock()
	// The create has arrived: the wait for it (unknown.go) is over, whatever its answer.
	c.asked.forget(uid)
	// interLink never sends a failed create again: its answer becomes the pod's status (unknown.go).
	defer func() {
		if err != nil {
			c.refused.remember(uid, err.Error(), time.Now())
		}
	}()

	// A retry of an accepted create answers from the journal and starts nothing.
	if e, found, jerr := c.journal.Get(uid); jerr != nil {
		return res, fmt.Errorf("cannot read the journal: %v", jerr)
	} else if found {
		return CreateResult{RemoteID: e.RemoteID, Backend: e.Backend, Duplicate: true}, nil
	}

	rt, err := c.router.Route(p)
	if err != nil {
		return res, err
	}
	res.Backend = rt.Backend
	b, caps, err := c.backends.Backend(rt.Backend)
	if err != nil {
		return res, err
	}
	c.clampGrace(p)
	if err := c.admit(p, caps, rt.Backend); err != nil {
		return res, err
	}
	c.obs.Routed(rt.Rule, rt.Backend)

	if c.backends.Exited(b, 0) {
		// Its exit is not noticed by the supervisor yet: down, as it will say in a moment.
		return res, backend.Unavailable("backend %q is unavailable (its process exited; the dispatcher is restarting it); retry in a minute", rt.Backend)
	}
	started := time.Now()
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeouts.Create)
	defer cancel()
	creq := backend.CreateRequest{Pod: p, Containers: data.Containers, JobScript: data.JobScript}
	got, err := b.Create(cctx, creq)
	if err != nil && cctx.Err() == nil && errors.Is(err, backend.ErrNoAnswer) {
		// The call broke with the create in flight (the process died, mostly): the backend may have recorded
		// the pod first. Answering 503 would leave interLink to mark Failed a pod that runs (and
		// reconciliation to adopt it).
		if got, b, err = c.createAgain(ctx, started, rt.Backend, b, data, creq); err != nil {
			return res, err
		}
	}
	if err != nil {
		if cctx.Err() != nil {
			// The backend may have made the pod after all: undo it, so that a refused create leaves nothing.
			c.undoCreate(b, rt.Backend, data, "its create did not finish in time")
			return res, backend.Unavailable("backend %q did not accept the pod within %s (timeouts.create); it may be overloaded, retry later",
				rt.Backend, c.cfg.Timeouts.Create)
		}
		return res, err
	}
	c.forgetAbandoned(uid)
	c.refused.forget(uid)
	e := Entry{UID: uid, Backend: rt.Backend, RemoteID: got.RemoteID, Namespace: p.Namespace, Name: p.Name, Created: time.Now().UTC(),
		InitContainers: containerNames(p.Spec.InitContainers), Containers: containerNames(p.Spec.Containers)}
	if err := c.journalPut(e, p); err != nil {
		c.undoCreate(b, rt.Backend, data, "the journal could not record it")
		return res, fmt.Errorf("the pod was not created: the dispatcher could not record it in its journal (%v); check the disk under data_dir", err)
	}
	c.log.Info("pod created", "pod_uid", uid, "namespace", p.Namespace, "name", p.Name, "backend", rt.Backend,
		"rule", rt.Rule, "remote_id", got.RemoteID)
	res.RemoteID = got.RemoteID
	return res, nil
}

// exitNoticeWait bounds how long a create whose answer was lost waits to see the backend's process exit
// (noticed within a few hundred milliseconds, longer on a loaded machine) before taking the connection
// for broken and the process for alive.
const exitNoticeWait = 5 * time.Second

// interLinkWait is how long interLink waits for the answer to a create; a confirmation after a lost answer
// ends before it (with a margin for the answer to travel), or interLink would give up on a pod that runs.
const interLinkWait = 120 * time.Second

// createAgain finds out whether a backend whose Create call broke has the pod, asking it again: Create is
// idempotent on the UID on every backend (it answers the recorded remote id and starts nothing twice; the
// conformance harness checks it). When the process died, it is the supervisor's relaunch that is asked,
// waited for within a create budget (timeouts.create) of its own, ending 5 s before interLink stops
// waiting for the answer (started is when the request began). A failure of that second Create is undone
// (Delete), so an error answer never leaves the pod running. A backend not back in time cannot be asked:
// the pod is remembered as abandoned, and reconciliation deletes it instead of adopting it if the backend
// comes back with it.
func (c *Core) createAgain(parent context.Context, started time.Time, name string, broken backend.Backend,
	data *interlink.RetrievedPodData, req backend.CreateRequest) (backend.CreateResult, backend.Backend, error) {
	p := &data.Pod
	log := c.log.With("pod_uid", string(p.UID), "namespace", p.Namespace, "name", p.Name, "backend", name)
	budget := min(c.cfg.Timeouts.Create, interLinkWait-5*time.Second-time.Since(started))
	// Not cut short by interLink hanging up: the outcome must be known either way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), budget)
	defer cancel()
	b := broken
	if c.backends.Exited(broken, exitNoticeWait) {
		log.Warn("the backend exited before answering a create; asking its next process whether it has the pod")
		var err error
		if b, err = c.backends.Replaced(ctx, name, broken); err != nil {
			c.abandon(name, p)
			log.Error("the backend did not come back to confirm a create; the pod will be deleted if it shows up", "err", err)
			return backend.CreateResult{}, broken, backend.Unavailable(
				"backend %q exited before answering the create and is not back within %s; the pod was not created, retry later",
				name, budget.Round(time.Millisecond))
		}
	} else {
		log.Warn("the backend's answer to a create was lost; asking it again")
	}
	res, err := b.Create(ctx, req)
	if err != nil {
		c.undoCreate(b, name, data, "its create could not be confirmed after its answer was lost")
		return backend.CreateResult{}, b, err
	}
	log.Info("the backend confirmed the create whose answer was lost", "remote_id", res.RemoteID)
	return res, b, nil
}

// abandon remembers a pod whose create could not be confirmed nor undone, its backend being down, so that
// reconciliation deletes it rather than adopts it when the backend comes back with it.
func (c *Core) abandon(name string, p *v1.Pod) { c.abandonUntil(name, p, time.Time{}) }

// abandonUntil is abandon with an end (zero: none): the mark of a pod whose undo succeeded only has to outlast
// a reconciliation that listed the pod before the undo and is waiting for the pod's lock.
func (c *Core) abandonUntil(name string, p *v1.Pod, until time.Time) {
	c.abandonedMu.Lock()
	defer c.abandonedMu.Unlock()
	if c.abandoned == nil {
		c.abandoned = map[string]abandonedPod{}
	}
	now := time.Now()
	for uid, a := range c.abandoned {
		if !a.until.IsZero() && now.After(a.until) {
			delete(c.abandoned, uid)
		}
	}
	c.abandoned[string(p.UID)] = abandonedPod{backend: name, pod: p.DeepCopy(), until: until}
}

// forgetAbandoned drops uid from the abandoned pods: a create of it succeeded since (interLink retried).
func (c *Core) forgetAbandoned(uid string) {
	c.abandonedMu.Lock()
	defer c.abandonedMu.Unlock()
	delete(c.abandoned, uid)
}

// abandonedOn returns the abandoned pod uid if backend name is where it was abandoned.
func (c *Core) abandonedOn(name, uid string) (*v1.Pod, bool) {
	c.abandonedMu.Lock()
	defer c.abandonedMu.Unlock()
	a, ok := c.abandoned[uid]
	if !ok || a.backend != name || (!a.until.IsZero() && time.Now().After(a.until)) {
		return nil, false
	}
	return a.pod, true
}

type abandonedPod struct {
	backend string
	pod     *v1.Pod
	until   time.Time // zero: until a reconciliation deletes it or a create of it succeeds
}

// undoCreate deletes a pod the backend may have made for a create that is answered with an error.
//
// The pod is marked abandoned as well, with the pod's lock held by the caller: a reconciliation may have
// listed it before the undo (a relaunched backend's reconciliation starts while a lost answer is being
// confirmed) and be waiting for that lock; unmarked, it would adopt a pod answered with an error, whether the
// undo removed it (a journal entry for nothing) or failed (a pod running that interLink was told failed).
// Marked, reconciliation deletes it instead. A mark whose undo succeeded ends once such a reconciliation is
// surely done; one whose undo failed lasts until a reconciliation deletes the pod.
func (c *Core) undoCreate(b backend.Backend, name string, data *interlink.RetrievedPodData, why string) {
	p := &data.Pod
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeouts.Delete)
	defer cancel()
	err := b.Delete(ctx, backend.DeleteRequest{Pod: p, GracePeriod: 0})
	if err == nil {
		c.abandonUntil(name, p, time.Now().Add(c.cfg.Timeouts.List+c.cfg.Timeouts.Delete+time.Minute))
	} else {
		c.abandon(name, p)
	}
	if err != nil {
		c.log.Error("could not undo a failed create; reconciliation will find the pod", "pod_uid", string(p.UID),
			"namespace", p.Namespace, "name", p.Name, "backend", name,
			"reason", why, "err", err)
		return
	}
	c.log.Warn("undid a create that could not be answered", "pod_uid", string(p.UID), "namespace", p.Namespace,
		"name", p.Name, "backend", name, "reason", why)
}

// checkPodNames checks a new pod's UID, name, namespace and container names as Kubernetes validates them.
func checkPodNames(p *v1.Pod) error {
	if err := pod.ValidIdentity(string(p.UID), p.Namespace, p.Name, true); err != nil {
		return err
	}
	for _, list := range []struct {
		path string
		cs   []v1.Container
	}{{"spec.initContainers", p.Spec.InitContainers}, {"spec.containers", p.Spec.Containers}} {
		for i, c := range list.cs {
			if err := pod.ValidContainerName(fmt.Sprintf("%s[%d].name", list.path, i), c.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

func containerNames(cs []v1.Container) []string {
	if len(cs) == 0 {
		return nil
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}
