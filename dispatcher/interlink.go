package dispatcher

// The interLink plugin routes: decode the body, call the Core, encode its answer (see Handler for the
// routes, statusOf for how errors become status codes).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// create handles POST /create.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		s.obs.PodCreated("none", OutcomeRejected)
		return
	}
	data, msg := decodeCreate(body)
	if msg != "" {
		s.obs.PodCreated("none", OutcomeRejected)
		httpError(w, r, http.StatusBadRequest, msg)
		return
	}
	// The create's budget, a second one if its answer is lost (createAgain), then an undo's, then the answer.
	s.answerWithin(w, 2*s.cfg.Timeouts.Create+s.cfg.Timeouts.Delete)
	res, err := s.core.Create(r.Context(), data)
	notePod(r, &data.Pod, res.Backend, err)
	if err != nil {
		backendError(w, r, err)
		return
	}
	writeJSON(w, interlink.CreateStruct{PodUID: string(data.Pod.UID), PodJID: res.RemoteID})
}

// delete handles POST|DELETE /delete.
func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		s.obs.PodDeleted("none", OutcomeRejected)
		return
	}
	var p v1.Pod
	const what = "delete request (the pod as a JSON object)"
	msg := ""
	switch firstByte(body) {
	case '{':
		if err := json.Unmarshal(body, &p); err != nil {
			msg = decodeError(what, body, err)
		}
	case 0:
		msg = "the body is empty; send the " + what
	default:
		msg = decodeError(what, body, errors.New("it is not a JSON object"))
	}
	if msg != "" {
		s.obs.PodDeleted("none", OutcomeRejected)
		httpError(w, r, http.StatusBadRequest, msg)
		return
	}
	if p.UID != "" {
		s.answerWithin(w, s.core.DeleteBudget(&p))
	}
	res, err := s.core.Delete(r.Context(), &p)
	notePod(r, &p, res.Backend, err)
	if err != nil {
		backendError(w, r, err)
		return
	}
	io.WriteString(w, res.Message+"\n")
}

// status handles GET|POST /status: the ping for an empty list, else one PodStatus per pod asked about.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var pods []*v1.Pod
	switch firstByte(body) {
	case 0:
		// An empty body is taken for the ping: /status must never fail on an empty list.
	case '[':
		if err := json.Unmarshal(body, &pods); err != nil {
			httpError(w, r, http.StatusBadRequest, decodeError("status request (a JSON array of pods)", body, err))
			return
		}
	case 'n':
		if string(bytes.TrimSpace(body)) != "null" {
			httpError(w, r, http.StatusBadRequest, "the body is not valid JSON; send a JSON array of pods")
			return
		}
	default:
		httpError(w, r, http.StatusBadRequest, "the status request must be a JSON array of pods ([] for the ping)")
		return
	}
	s.answerWithin(w, max(s.cfg.Timeouts.Status, s.cfg.Timeouts.Ping))
	if len(pods) == 0 {
		writeJSON(w, s.core.Ping(r.Context()))
		return
	}
	st, err := s.core.Status(r.Context(), pods)
	if err != nil {
		backendError(w, r, err)
		return
	}
	if len(pods) == 1 {
		info(r).setPod(string(pods[0].UID), pods[0].Namespace, pods[0].Name)
	}
	writeJSON(w, st)
}

// logs handles GET|POST /getLogs: one container's log as text/plain, flushed write by write when
// following, until the backend's stream ends or the client leaves.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var req interlink.LogStruct
	const what = "log request (a LogStruct object)"
	switch firstByte(body) {
	case '{':
		if err := json.Unmarshal(body, &req); err != nil {
			httpError(w, r, http.StatusBadRequest, decodeError(what, body, err))
			return
		}
	case 0:
		httpError(w, r, http.StatusBadRequest, "the body is empty; send a "+what)
		return
	default:
		httpError(w, r, http.StatusBadRequest, decodeError(what, body, errors.New("it is not a JSON object")))
		return
	}

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	fw := &flushWriter{w: w, rc: http.NewResponseController(w), flush: req.Opts.Follow, perWrite: s.cfg.Timeouts.Write}
	if req.Opts.Follow {
		// A followed log may wait for its next line for as long as the container is quiet: no deadline until
		// a write, which then gets timeouts.write.
		_ = fw.rc.SetWriteDeadline(time.Time{})
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if req.Opts.Follow {
		defer context.AfterFunc(s.draining, cancel)()
	}
	name, err := s.core.Logs(ctx, req, fw)
	if !IsRequestError(err) {
		info(r).setPod(req.PodUID, req.Namespace, req.PodName)
		info(r).backend = name
	}
	switch {
	case err == nil:
		if !fw.started {
			w.WriteHeader(http.StatusOK)
		}
	case ctx.Err() != nil:
		// The client left, or the dispatcher is shutting down: the stream just ends.
	case !fw.started:
		backendError(w, r, err)
	default:
		// Headers are gone: all that is left is to end the stream and say why in the log.
		info(r).errMsg = err.Error()
	}
}

// notePod names in the request log the pod a create or delete was about, and its backend, unless the
// request was refused as malformed (then its names are not to be trusted, even in a log).
func notePod(r *http.Request, p *v1.Pod, backendName string, err error) {
	if IsRequestError(err) {
		return
	}
	info(r).setPod(string(p.UID), p.Namespace, p.Name)
	info(r).backend = backendName
}

// flushWriter writes a log to the response and, when following, flushes after every write so that the lines
// reach interLink as they come. started tells whether the 200 has gone out.
type flushWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	flush   bool
	started bool
	// perWrite is how long each write may take (timeouts.write): a log, followed or long, lasts as long
	// as it has lines to send, but a client that stops reading is let go.
	perWrite time.Duration
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.started = true
	if f.perWrite > 0 {
		_ = f.rc.SetWriteDeadline(time.Now().Add(f.perWrite))
	}
	n, err := f.w.Write(p)
	if err != nil || !f.flush {
		return n, err
	}
	if ferr := f.rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
		return n, ferr
	}
	return n, nil
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
