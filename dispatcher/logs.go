package dispatcher

import (
	"context"
	"errors"
	"io"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Logs writes one container's log to w, as the pod's backend streams it, until the stream ends (a followed
// log: until the container ends or ctx does). It returns the pod's backend ("" when none can be named). A
// request interLink would have refused is a *RequestError; a pod no backend of this dispatcher can have is
// backend.KindNotFound.
func (c *Core) Logs(ctx context.Context, req interlink.LogStruct, w io.Writer) (string, error) {
	if msg := checkLogRequest(req); msg != "" {
		return "", &RequestError{msg}
	}
	// A pod for the router: the journal is keyed by UID, and routing reads no more than the identity.
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(req.PodUID), Namespace: req.Namespace, Name: req.PodName}}
	name, e, journaled, err := c.locate(p)
	if err != nil {
		var re *RouteError
		if errors.As(err, &re) {
			return "", backend.NotFound("pod %s/%s (%s) is not known to this dispatcher", req.Namespace, req.PodName, req.PodUID)
		}
		return "", err
	}
	if why := c.router.NotRunning(name); journaled && why != "" {
		return name, backend.NotFound("pod %s/%s (%s) has no log to show: %s", req.Namespace, req.PodName, req.PodUID, why)
	}
	b, _, err := c.backends.Backend(name)
	if err != nil {
		return name, err
	}
	return name, b.Logs(ctx, backend.LogRequest{LogStruct: req, RemoteID: e.RemoteID}, w)
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
