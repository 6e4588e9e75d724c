package conformance

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	podlayer "github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// runningPod creates a pod whose container runs until it is stopped and waits for it to run.
func (h *harness) runningPod(t *testing.T, name string) (*v1.Pod, backend.CreateResult) {
	t.Helper()
	pod := NewPod(name, ShellContainer("main", "echo running; sleep 3600"))
	res := h.create(t, pod, Objects{})
	h.waitPhase(t, pod, v1.PodRunning)
	return pod, res
}

// deleteByRemoteID deletes a running pod from the least a delete request can carry: interLink sends the
// whole pod, but the dispatcher accepts (and passes on) a pod holding only its metadata.uid, beside the
// remote id its journal kept from Create. The backend must find and remove everything it made from that.
func (h *harness) deleteByRemoteID(t *testing.T) {
	pod, res := h.runningPod(t, "delremoteid")
	bare := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: pod.UID}}
	ctx, cancel := context.WithTimeout(context.Background(), h.o.CallTimeout+h.o.GracePeriod)
	defer cancel()
	start := time.Now()
	if err := h.b.Delete(ctx, backend.DeleteRequest{Pod: bare, RemoteID: res.RemoteID, GracePeriod: h.o.GracePeriod}); err != nil {
		t.Fatalf("Delete of pod %s from its UID and remote id %q alone: %v", pod.Name, res.RemoteID, err)
	}
	if d := time.Since(start); d > h.o.GracePeriod+30*time.Second {
		t.Errorf("Delete of a running pod took %v with a grace period of %v", d, h.o.GracePeriod)
	}
	h.checkGone(t, pod)
}

// deleteTwice deletes a running pod, then deletes it again: interLink retries a delete whose answer it did
// not get, and a virtual kubelet may send one per update of a terminating pod, so the second must succeed
// too, and quickly.
func (h *harness) deleteTwice(t *testing.T) {
	pod, res := h.runningPod(t, "deltwice")
	h.delete(t, pod, res.RemoteID)
	start := time.Now()
	if err := h.b.Delete(h.ctx(t), backend.DeleteRequest{Pod: pod, RemoteID: res.RemoteID, GracePeriod: h.o.GracePeriod}); err != nil {
		t.Errorf("second Delete of pod %s: %v; deleting a deleted pod must succeed", pod.Name, err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("second Delete of pod %s took %v: nothing was left to stop", pod.Name, d)
	}
	h.checkGone(t, pod)
}

// vanished removes a running pod's objects from the engine behind the backend's back (Options.Vanish).
// The backend must then report every container terminated so that the pod reads as Failed: the virtual
// kubelet keeps a pod Running while one of its containers reads as running, and a pod that no longer runs
// anywhere must not stay Running in Kubernetes forever. Deleting it afterwards succeeds and leaves nothing.
func (h *harness) vanished(t *testing.T) {
	if h.o.Vanish == nil {
		h.skip(t, ScenarioVanished, "the backend's test gives no Options.Vanish to remove a pod behind the backend's back")
	}
	pod, res := h.runningPod(t, "vanished")
	h.o.Vanish(t, string(pod.UID), res.RemoteID)
	st := WaitFor(t, h.b, pod, h.o.PodTimeout, "every container reported terminated after the engine lost the pod",
		func(st interlink.PodStatus) bool {
			for _, c := range append(append([]v1.ContainerStatus{}, st.InitContainers...), st.Containers...) {
				if c.State.Terminated == nil {
					return false
				}
			}
			return true
		})
	running := pod.DeepCopy()
	running.Status.Phase = v1.PodRunning
	if p := podlayer.NextPhase(running, st); p != v1.PodFailed {
		t.Errorf("a running pod whose engine objects vanished reads as %s, want Failed: it did not complete\n%s",
			p, FormatStatus(st))
	}
	h.delete(t, pod, res.RemoteID)
	h.checkGone(t, pod)
}
