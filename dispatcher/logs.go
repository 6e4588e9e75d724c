package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

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
	if msg := checkLogRequest(req); msg != "" {
		httpError(w, r, http.StatusBadRequest, msg)
		return
	}
	info(r).setPod(req.PodUID, req.Namespace, req.PodName)
	// A pod for the router: the journal is keyed by UID, and routing reads no more than the identity.
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(req.PodUID), Namespace: req.Namespace, Name: req.PodName}}
	name, e, journaled, err := s.locate(p)
	if err != nil {
		var re *RouteError
		if errors.As(err, &re) {
			httpError(w, r, http.StatusNotFound, fmt.Sprintf("pod %s/%s (%s) is not known to this dispatcher", req.Namespace, req.PodName, req.PodUID))
			return
		}
		httpError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	info(r).backend = name
	if why := s.router.NotRunning(name); journaled && why != "" {
		httpError(w, r, http.StatusNotFound, fmt.Sprintf("pod %s/%s (%s) has no log to show: %s", req.Namespace, req.PodName, req.PodUID, why))
		return
	}
	b, _, err := s.backends.Backend(name)
	if err != nil {
		backendError(w, r, err)
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
	err = b.Logs(ctx, backend.LogRequest{LogStruct: req, RemoteID: e.RemoteID}, fw)
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

// checkLogRequest refuses what interLink would itself have refused; "" when the request is sound.
func checkLogRequest(req interlink.LogStruct) string {
	o := req.Opts
	switch {
	case req.PodUID == "":
		return "the log request has no PodUID; send the pod's metadata.uid"
	case req.ContainerName == "":
		return "the log request has no ContainerName; name the container whose log you want"
	case o.Tail > 0 && o.LimitBytes > 0:
		return "Tail and Bytes cannot be combined; ask for the last lines or for a byte limit, not both"
	case o.SinceSeconds > 0 && !o.SinceTime.IsZero():
		return "SinceSeconds and SinceTime cannot be combined; give one of them"
	case o.Tail < 0 || o.LimitBytes < 0 || o.SinceSeconds < 0:
		return "Tail, Bytes and SinceSeconds must not be negative"
	}
	// The pod is found by its UID, but every name here reaches the engine: none may be malformed.
	if err := pod.ValidIdentity(req.PodUID, req.Namespace, req.PodName, false); err != nil {
		return err.Error()
	}
	if err := pod.ValidContainerName("ContainerName", req.ContainerName); err != nil {
		return err.Error()
	}
	return ""
}
