package conformance

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// malformedUIDs are pod UIDs that pod.ValidPodUID refuses, each a way a UID could reach past the shape every
// backend carries it in (a label value, part of a container or job name, a directory name, a word of a
// job script).
var malformedUIDs = []struct{ name, uid string }{
	{"dotdot", "../escape"},
	{"slash", "a/b"},
	{"space", "with space"},
	{"shell", "x;touch${IFS}pwned"},
	{"nul", "nul\x00byte"},
	{"overlong", strings.Repeat("a", 129)},
}

// malformedUID checks that a malformed pod UID is refused as invalid input (KindInvalid, which the
// dispatcher answers with 4xx) by Create, Delete and Logs alike, with a message naming metadata.uid; that
// Status, which answers per pod and never fails a batch for one pod, reports it as a pod the backend does
// not have (terminated); and that nothing is made for it. The dispatcher refuses such UIDs before a backend
// sees them, so a backend's refusal is the second line, and it must be the same on every backend.
func (h *harness) malformedUID(t *testing.T) {
	for _, tc := range malformedUIDs {
		t.Run(tc.name, func(t *testing.T) {
			pod := NewPod("malformed", ShellContainer("main", "echo should never run"))
			pod.UID = types.UID(tc.uid)
			check := func(op string, err error) {
				t.Helper()
				if err == nil {
					t.Errorf("%s of a pod with metadata.uid %q succeeded, want an invalid-input error", op, tc.uid)
				} else if backend.KindOf(err) != backend.KindInvalid {
					t.Errorf("%s of a pod with metadata.uid %q: %v (kind %v), want an invalid-input error", op, tc.uid,
						err, backend.KindOf(err))
				} else if !strings.Contains(err.Error(), "metadata.uid") {
					t.Errorf("%s of a pod with metadata.uid %q: the refusal %q does not name metadata.uid", op,
						tc.uid, err)
				}
			}

			res, err := h.b.Create(h.ctx(t), h.request(pod, Objects{}))
			check("Create", err)
			if err == nil {
				t.Logf("Create answered remote id %q", res.RemoteID)
			}

			err = h.b.Delete(h.ctx(t), backend.DeleteRequest{Pod: pod, RemoteID: res.RemoteID, GracePeriod: h.o.GracePeriod})
			check("Delete", err)

			sts, err := h.b.Status(h.ctx(t), []*v1.Pod{pod})
			switch {
			case err != nil:
				t.Errorf("Status of a pod with metadata.uid %q: %v, want its own status saying the backend has no such pod", tc.uid, err)
			case len(sts) != 1 || len(sts[0].Containers) != 1 || sts[0].Containers[0].State.Terminated == nil:
				t.Errorf("Status of a pod with metadata.uid %q answered %+v, want its container terminated (not found)", tc.uid, sts)
			}

			var buf bytes.Buffer
			err = h.b.Logs(h.ctx(t), logRequest(pod, "main", interlink.LogOpts{}), &buf)
			check("Logs", err)
			if buf.Len() > 0 {
				t.Errorf("Logs of a pod with metadata.uid %q wrote %q", tc.uid, buf.String())
			}

			recs, err := h.b.List(h.ctx(t))
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			for _, r := range recs {
				if r.UID == tc.uid || r.Name == pod.Name {
					t.Errorf("a pod with a malformed UID is listed: %+v", r)
				}
			}
		})
	}
}

// logsNoContainer asks a running pod for the log of a container it does not have, with the options that
// take other paths in a backend (follow, previous, tail). Each must answer at once with a not-found error
// naming the container: a follow that waits for a container that will never exist hangs interLink's call.
func (h *harness) logsNoContainer(t *testing.T) {
	pod, _ := h.runningPod(t, "logsnoctr")
	for _, opts := range []interlink.LogOpts{{}, {Follow: true}, {Previous: true}, {Tail: 1}} {
		ctx, cancel := context.WithTimeout(context.Background(), logsNoContainerBound)
		var buf bytes.Buffer
		err := h.b.Logs(ctx, logRequest(pod, "nosuch", opts), &buf)
		hung := ctx.Err() != nil
		cancel()
		switch {
		case hung:
			t.Errorf("Logs of container \"nosuch\" with %+v did not answer within %v (it answered %v)", opts,
				logsNoContainerBound, err)
		case backend.KindOf(err) != backend.KindNotFound:
			t.Errorf("Logs of container \"nosuch\" with %+v: %v (kind %v), want a not-found error", opts, err,
				backend.KindOf(err))
		case !strings.Contains(err.Error(), "nosuch"):
			t.Errorf("Logs of container \"nosuch\" with %+v: the error %q does not name the container", opts, err)
		}
		if buf.Len() > 0 {
			t.Errorf("Logs of container \"nosuch\" with %+v wrote %q", opts, buf.String())
		}
	}
}

// logsNoContainerBound is how long a log call for a container that does not exist may take.
const logsNoContainerBound = 15 * time.Second
