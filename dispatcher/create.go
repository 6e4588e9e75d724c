package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// create handles POST /create: route, validate, create on the backend within the budget, journal, answer.
// A refused request changes nothing; an accepted one is journaled before the answer.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	// Counted whatever the answer; the backend label stays "none" until a configured backend is chosen, so
	// that a pod naming any backend it likes cannot add series.
	chosen, duplicate := "none", false
	defer func() {
		outcome := outcomeOf(answered(w))
		if duplicate {
			outcome = OutcomeDuplicate
		}
		s.obs.PodCreated(chosen, outcome)
	}()
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	data, msg := decodeCreate(body)
	if msg != "" {
		httpError(w, r, http.StatusBadRequest, msg)
		return
	}
	p := &data.Pod
	uid := string(p.UID)
	if uid == "" {
		httpError(w, r, http.StatusBadRequest, "the pod has no metadata.uid; send the pod as the virtual kubelet has it, with its UID")
		return
	}
	// Names reach the engines (container names, labels, directories): refuse what Kubernetes would refuse
	// before anything else reads them; the request log names the pod only once they are sound.
	if err := checkPodNames(p); err != nil {
		httpError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	info(r).setPod(uid, p.Namespace, p.Name)
	unlock := s.locks.Lock(uid)
	defer unlock()
	// The create has arrived: the wait for it (unknown.go) is over, whatever its answer.
	s.asked.forget(uid)
	// interLink never sends a failed create again: its answer becomes the pod's status (unknown.go).
	defer func() {
		if code := answered(w); code >= 400 {
			s.refused.remember(uid, info(r).errMsg, time.Now())
		}
	}()

	// A retry of an accepted create answers from the journal and starts nothing.
	if e, found, err := s.journal.Get(uid); err != nil {
		httpError(w, r, http.StatusInternalServerError, fmt.Sprintf("cannot read the journal: %v", err))
		return
	} else if found {
		info(r).backend = e.Backend
		chosen, duplicate = e.Backend, true
		writeJSON(w, interlink.CreateStruct{PodUID: uid, PodJID: e.RemoteID})
		return
	}

	rt, err := s.router.Route(p)
	if err != nil {
		httpError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	info(r).backend = rt.Backend
	chosen = rt.Backend
	b, caps, err := s.backends.Backend(rt.Backend)
	if err != nil {
		backendError(w, r, err)
		return
	}
	s.clampGrace(r, p)
	if err := s.admit(p, caps, rt.Backend); err != nil {
		httpError(w, r, statusOf(err), err.Error())
		return
	}
	s.obs.Routed(rt.Rule, rt.Backend)

	if s.backends.Exited(b, 0) {
		// Its exit is not noticed by the supervisor yet: down, as it will say in a moment.
		backendError(w, r, backend.Unavailable("backend %q is unavailable (its process exited; the dispatcher is restarting it); retry in a minute", rt.Backend))
		return
	}
	// The create's budget, a second one if its answer is lost (createAgain), then an undo's, then the answer.
	s.answerWithin(w, 2*s.cfg.Timeouts.Create+s.cfg.Timeouts.Delete)
	started := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeouts.Create)
	defer cancel()
	creq := backend.CreateRequest{Pod: p, Containers: data.Containers, JobScript: data.JobScript}
	res, err := b.Create(ctx, creq)
	if err != nil && ctx.Err() == nil && errors.Is(err, backend.ErrNoAnswer) {
		// The call broke with the create in flight (the process died, mostly): the backend may have recorded
		// the pod first. Answering 503 would leave interLink to mark Failed a pod that runs (and
		// reconciliation to adopt it).
		if res, b, err = s.createAgain(r.Context(), started, rt.Backend, b, data, creq); err != nil {
			backendError(w, r, err)
			return
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			// The backend may have made the pod after all: undo it, so that a refused create leaves nothing.
			s.undoCreate(b, rt.Backend, data, "its create did not finish in time")
			httpError(w, r, http.StatusServiceUnavailable, fmt.Sprintf(
				"backend %q did not accept the pod within %s (timeouts.create); it may be overloaded, retry later", rt.Backend, s.cfg.Timeouts.Create))
			return
		}
		backendError(w, r, err)
		return
	}
	s.forgetAbandoned(uid)
	s.refused.forget(uid)
	e := Entry{UID: uid, Backend: rt.Backend, RemoteID: res.RemoteID, Namespace: p.Namespace, Name: p.Name, Created: time.Now().UTC()}
	if err := s.journalPut(e); err != nil {
		s.undoCreate(b, rt.Backend, data, "the journal could not record it")
		httpError(w, r, http.StatusInternalServerError, fmt.Sprintf(
			"the pod was not created: the dispatcher could not record it in its journal (%v); check the disk under data_dir", err))
		return
	}
	s.log.Info("pod created", "pod_uid", uid, "namespace", p.Namespace, "name", p.Name, "backend", rt.Backend,
		"rule", rt.Rule, "remote_id", res.RemoteID)
	writeJSON(w, interlink.CreateStruct{PodUID: uid, PodJID: res.RemoteID})
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
func (s *Server) createAgain(parent context.Context, started time.Time, name string, broken backend.Backend,
	data *interlink.RetrievedPodData, req backend.CreateRequest) (backend.CreateResult, backend.Backend, error) {
	p := &data.Pod
	log := s.log.With("pod_uid", string(p.UID), "namespace", p.Namespace, "name", p.Name, "backend", name)
	budget := min(s.cfg.Timeouts.Create, interLinkWait-5*time.Second-time.Since(started))
	// Not cut short by interLink hanging up: the outcome must be known either way.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), budget)
	defer cancel()
	b := broken
	if s.backends.Exited(broken, exitNoticeWait) {
		log.Warn("the backend exited before answering a create; asking its next process whether it has the pod")
		var err error
		if b, err = s.backends.Replaced(ctx, name, broken); err != nil {
			s.abandon(name, p)
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
		s.undoCreate(b, name, data, "its create could not be confirmed after its answer was lost")
		return backend.CreateResult{}, b, err
	}
	log.Info("the backend confirmed the create whose answer was lost", "remote_id", res.RemoteID)
	return res, b, nil
}

// abandon remembers a pod whose create could not be confirmed nor undone, its backend being down, so that
// reconciliation deletes it rather than adopts it when the backend comes back with it.
func (s *Server) abandon(name string, p *v1.Pod) { s.abandonUntil(name, p, time.Time{}) }

// abandonUntil is abandon with an end (zero: none): the mark of a pod whose undo succeeded only has to outlast
// a reconciliation that listed the pod before the undo and is waiting for the pod's lock.
func (s *Server) abandonUntil(name string, p *v1.Pod, until time.Time) {
	s.abandonedMu.Lock()
	defer s.abandonedMu.Unlock()
	if s.abandoned == nil {
		s.abandoned = map[string]abandonedPod{}
	}
	now := time.Now()
	for uid, a := range s.abandoned {
		if !a.until.IsZero() && now.After(a.until) {
			delete(s.abandoned, uid)
		}
	}
	s.abandoned[string(p.UID)] = abandonedPod{backend: name, pod: p.DeepCopy(), until: until}
}

// forgetAbandoned drops uid from the abandoned pods: a create of it succeeded since (interLink retried).
func (s *Server) forgetAbandoned(uid string) {
	s.abandonedMu.Lock()
	defer s.abandonedMu.Unlock()
	delete(s.abandoned, uid)
}

// abandonedOn returns the abandoned pod uid if backend name is where it was abandoned.
func (s *Server) abandonedOn(name, uid string) (*v1.Pod, bool) {
	s.abandonedMu.Lock()
	defer s.abandonedMu.Unlock()
	a, ok := s.abandoned[uid]
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
func (s *Server) undoCreate(b backend.Backend, name string, data *interlink.RetrievedPodData, why string) {
	p := &data.Pod
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeouts.Delete)
	defer cancel()
	err := b.Delete(ctx, backend.DeleteRequest{Pod: p, GracePeriod: 0})
	if err == nil {
		s.abandonUntil(name, p, time.Now().Add(s.cfg.Timeouts.List+s.cfg.Timeouts.Delete+time.Minute))
	} else {
		s.abandon(name, p)
	}
	if err != nil {
		s.log.Error("could not undo a failed create; reconciliation will find the pod", "pod_uid", string(p.UID),
			"namespace", p.Namespace, "name", p.Name, "backend", name,
			"reason", why, "err", err)
		return
	}
	s.log.Warn("undid a create that could not be answered", "pod_uid", string(p.UID), "namespace", p.Namespace,
		"name", p.Name, "backend", name, "reason", why)
}

// decodeCreate accepts one RetrievedPodData object (interLink 0.5.0 on) or an array holding one (older
// releases). msg is a sentence for a 400 when the body is neither.
func decodeCreate(body []byte) (*interlink.RetrievedPodData, string) {
	const what = "create request (a RetrievedPodData object with a pod, or an array holding one)"
	var data interlink.RetrievedPodData
	switch firstByte(body) {
	case '{':
		if err := json.Unmarshal(body, &data); err != nil {
			return nil, decodeError(what, body, err)
		}
	case '[':
		var list []interlink.RetrievedPodData
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, decodeError(what, body, err)
		}
		if len(list) != 1 {
			return nil, fmt.Sprintf("the create request holds %d pods; send exactly one", len(list))
		}
		data = list[0]
	case 0:
		return nil, "the body is empty; send a " + what
	default:
		return nil, decodeError(what, body, errors.New("it is neither a JSON object nor an array"))
	}
	return &data, ""
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
