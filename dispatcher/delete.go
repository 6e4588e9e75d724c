package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// delete handles POST|DELETE /delete: the pod is stopped gracefully on its backend, then forgotten.
// Deleting a pod no backend knows succeeds.
func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	chosen := "none" // a configured backend once located, like PodCreated's
	defer func() { s.obs.PodDeleted(chosen, outcomeOf(answered(w))) }()
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var p v1.Pod
	const what = "delete request (the pod as a JSON object)"
	switch firstByte(body) {
	case '{':
		if err := json.Unmarshal(body, &p); err != nil {
			httpError(w, r, http.StatusBadRequest, decodeError(what, body, err))
			return
		}
	case 0:
		httpError(w, r, http.StatusBadRequest, "the body is empty; send the "+what)
		return
	default:
		httpError(w, r, http.StatusBadRequest, decodeError(what, body, errors.New("it is not a JSON object")))
		return
	}
	uid := string(p.UID)
	if uid == "" {
		httpError(w, r, http.StatusBadRequest, "the pod has no metadata.uid; send the pod with its UID")
		return
	}
	// No pod with a malformed UID, name or namespace was ever created here: refuse it before an engine sees it.
	if err := pod.ValidIdentity(uid, p.Namespace, p.Name, false); err != nil {
		httpError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	info(r).setPod(uid, p.Namespace, p.Name)
	unlock := s.locks.Lock(uid)
	defer unlock()
	s.refused.forget(uid)
	s.asked.forget(uid)

	name, e, journaled, err := s.locate(&p)
	if err != nil {
		var re *RouteError
		if errors.As(err, &re) {
			// A pod routed to a backend this dispatcher does not have was never created here.
			io.WriteString(w, fmt.Sprintf("pod %s/%s (%s) is not known to this dispatcher; nothing to delete\n", p.Namespace, p.Name, uid))
			return
		}
		httpError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	info(r).backend = name
	if slices.Contains(s.backends.Names(), name) {
		chosen = name // an enabled backend: a bounded label
	}
	if why := s.router.NotRunning(name); journaled && why != "" {
		s.forgetOnStopped(w, r, &p, name, why)
		return
	}
	b, _, err := s.backends.Backend(name)
	if err != nil {
		if !journaled && backend.KindOf(err) == backend.KindUnavailable {
			// Never created through this dispatcher, and reconciliation re-adopts it if its backend has it.
			io.WriteString(w, fmt.Sprintf("pod %s/%s (%s) is not known to this dispatcher; nothing to delete\n", p.Namespace, p.Name, uid))
			return
		}
		backendError(w, r, err)
		return
	}
	s.clampGrace(r, &p)
	grace := pod.GracePeriod(&p)
	s.answerWithin(w, grace+s.cfg.Timeouts.Delete)
	ctx, cancel := context.WithTimeout(r.Context(), grace+s.cfg.Timeouts.Delete)
	defer cancel()
	err = b.Delete(ctx, backend.DeleteRequest{Pod: &p, RemoteID: e.RemoteID, GracePeriod: grace})
	if err != nil && backend.KindOf(err) != backend.KindNotFound { // a pod the backend does not have is deleted
		backendError(w, r, err)
		return
	}
	if journaled {
		if err := s.journalDelete(uid); err != nil {
			// The pod is gone; its stale entry only costs a NotFound status later.
			s.log.Warn("pod deleted but its journal entry could not be removed", "pod_uid", uid,
				"namespace", p.Namespace, "name", p.Name, "err", err)
		}
	}
	s.log.Info("pod deleted", "pod_uid", uid, "namespace", p.Namespace, "name", p.Name, "backend", name, "grace", grace)
	io.WriteString(w, fmt.Sprintf("pod %s/%s (%s) deleted from backend %s\n", p.Namespace, p.Name, uid, name))
}

// forgetOnStopped deletes a journaled pod whose backend the dispatcher no longer runs (why says so): nothing
// can reach that backend, so the pod is forgotten, and the log says, once, what may be left on it.
func (s *Server) forgetOnStopped(w http.ResponseWriter, r *http.Request, p *v1.Pod, name, why string) {
	uid := string(p.UID)
	if err := s.journalDelete(uid); err != nil {
		s.log.Error("cannot forget a pod whose backend is not running: its journal entry could not be removed",
			"pod_uid", uid, "namespace", p.Namespace, "name", p.Name, "backend", name, "err", err)
		httpError(w, r, http.StatusInternalServerError, fmt.Sprintf(
			"the pod could not be forgotten: the dispatcher could not remove it from its journal (%v); check the disk under data_dir", err))
		return
	}
	s.log.Warn("pod forgotten without deleting it: "+why+"; whatever it left there is not cleaned up",
		"pod_uid", uid, "namespace", p.Namespace, "name", p.Name, "backend", name)
	io.WriteString(w, fmt.Sprintf("pod %s/%s (%s) forgotten: %s\n", p.Namespace, p.Name, uid, why))
}

// clampGrace holds the pod's grace periods within limits.max_grace_period (a negative one is 1 s, as in
// Kubernetes) before any backend sees the pod, and logs what it changed.
func (s *Server) clampGrace(r *http.Request, p *v1.Pod) {
	if changed := pod.ClampGracePeriods(p, s.cfg.Limits.MaxGracePeriod); len(changed) > 0 {
		s.log.Warn("grace periods held within limits.max_grace_period", "pod_uid", string(p.UID), "namespace", p.Namespace,
			"name", p.Name, "fields", strings.Join(changed, ","), "max", s.cfg.Limits.MaxGracePeriod,
			"session", r.Header.Get(SessionHeader))
	}
}
