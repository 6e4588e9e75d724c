package dispatcher

// The admin API (/api/v1): what the dispatcher holds, read through the Core, beside the interLink routes and
// behind the same access control. JSON with snake_case keys; errors are {"error": "<one sentence>"}
// (httpError). Pods are created, deleted and their logs read through the interLink routes.

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/adminapi"
)

// adminPrefix starts every route of the admin API.
const adminPrefix = "/api/"

// adminRoutes adds the admin API to r.
func (s *Server) adminRoutes(r chi.Router) {
	r.Get("/api/v1/pods", s.adminPods)
	r.Get("/api/v1/pods/{uid}", s.adminPod)
	r.Get("/api/v1/backends", s.adminBackends)
}

// podFilterKeys are the query keys GET /api/v1/pods takes.
var podFilterKeys = []string{"backend", "namespace", "name", "phase"}

// adminPods handles GET /api/v1/pods[?backend=B&namespace=NS&name=N&phase=P].
func (s *Server) adminPods(w http.ResponseWriter, r *http.Request) {
	f, err := podFilter(r.URL.Query())
	if err == nil {
		err = f.Check()
	}
	if err != nil {
		httpError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	pods, err := s.core.Pods(f)
	if err != nil {
		backendError(w, r, err)
		return
	}
	writeJSON(w, adminapi.PodList{Pods: pods})
}

// podFilter reads the query of GET /api/v1/pods; an unknown key, or a key given twice, is an error naming it.
func podFilter(q url.Values) (PodFilter, error) {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var f PodFilter
	for _, k := range keys {
		if len(q[k]) > 1 {
			return f, fmt.Errorf("the query key %q is given %d times; give it once", k, len(q[k]))
		}
		v := q.Get(k)
		switch k {
		case "backend":
			f.Backend = v
		case "namespace":
			f.Namespace = v
		case "name":
			f.Name = v
		case "phase":
			f.Phase = v1.PodPhase(v)
		default:
			return f, fmt.Errorf("the query key %q is not a filter of /api/v1/pods; use %s", k, strings.Join(podFilterKeys, ", "))
		}
	}
	return f, nil
}

// adminPod handles GET /api/v1/pods/{uid}.
func (s *Server) adminPod(w http.ResponseWriter, r *http.Request) {
	uid := chi.URLParam(r, "uid")
	s.answerWithin(w, max(s.cfg.Timeouts.Status, s.cfg.Timeouts.Ping))
	sum, st, err := s.core.Pod(r.Context(), uid)
	if err != nil {
		backendError(w, r, err)
		return
	}
	info(r).setPod(sum.UID, sum.Namespace, sum.Name)
	info(r).backend = sum.Backend
	writeJSON(w, adminapi.PodDetail{Pod: sum, Status: st})
}

// adminBackends handles GET /api/v1/backends.
func (s *Server) adminBackends(w http.ResponseWriter, r *http.Request) {
	bs, err := s.core.Backends()
	if err != nil {
		backendError(w, r, err)
		return
	}
	writeJSON(w, adminapi.BackendList{Backends: bs})
}
