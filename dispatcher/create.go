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
	unlock := s.locks.lock(uid)
	defer unlock()

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

	// The create's budget, then an undo's if it runs over, then the answer.
	s.answerWithin(w, s.cfg.Timeouts.Create+s.cfg.Timeouts.Delete)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeouts.Create)
	defer cancel()
	res, err := b.Create(ctx, backend.CreateRequest{Pod: p, Containers: data.Containers, JobScript: data.JobScript})
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

// undoCreate deletes a pod the backend may have made for a create that is answered with an error.
func (s *Server) undoCreate(b backend.Backend, name string, data *interlink.RetrievedPodData, why string) {
	p := &data.Pod
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeouts.Delete)
	defer cancel()
	err := b.Delete(ctx, backend.DeleteRequest{Pod: p, GracePeriod: 0})
	if err != nil {
		s.log.Error("could not undo a failed create; reconciliation will find the pod", "pod_uid", string(p.UID),
			"namespace", p.Namespace, "name", p.Name, "backend", name,
			"reason", why, "error", err)
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
