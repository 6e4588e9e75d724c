package kubernetes

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Status answers from the informers' cache: no request to the remote API server, but for a pod this process
// created a moment ago that the watch has not shown yet (one GET).
func (b *Backend) Status(ctx context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	out := make([]interlink.PodStatus, 0, len(pods))
	for _, p := range pods {
		if p == nil {
			continue
		}
		uid := string(p.UID)
		if pod.ValidPodUID(uid) != nil {
			out = append(out, pod.NotFoundStatus(p, fmt.Sprintf("metadata.uid %s is not a UID", pod.Quote(uid))))
			continue
		}
		rp, _ := b.cached(uid, b.remoteNS(p.Namespace, ""))
		source := "watch"
		if rp == nil && b.justCreated(uid) {
			source = "get"
			ns := b.cfg.remoteNamespace(p.Namespace)
			start := time.Now()
			got, err := b.cli.CoreV1().Pods(ns).Get(ctx, remoteName(uid), metav1.GetOptions{})
			b.metrics.observe("get_pod", start, err)
			switch {
			case err == nil && got.Annotations[annotationUID] == uid:
				rp = got
			case err != nil && !apierrors.IsNotFound(err):
				return nil, b.apiError(err, "cannot read the remote pod %s/%s", ns, remoteName(uid))
			}
		}
		if rp == nil {
			b.metrics.statusServed.WithLabelValues("absent").Inc()
			out = append(out, pod.NotFoundStatus(p, fmt.Sprintf("the remote cluster has no pod %s for UID %s: it was never created there, or it was deleted or lost",
				remoteName(uid), uid)))
			continue
		}
		b.metrics.statusServed.WithLabelValues(source).Inc()
		out = append(out, statusOf(p, rp))
	}
	return out, nil
}

// statusOf maps the remote pod's status to the local pod's, one container status per spec container: the
// remote statuses as they are (states, reasons, messages, restart counts, last states, readiness, image
// ids); a container the remote kubelet has not reported yet waits with the reason the remote pod gives; one
// of a pod the remote cluster ended without it (an eviction, a lost node, a deletion) is terminated with the
// pod's reason.
func statusOf(p *v1.Pod, rp *v1.Pod) interlink.PodStatus {
	st := pod.NewPodStatus(p, rp.Namespace+"/"+rp.Name)
	byName := map[string]v1.ContainerStatus{}
	for _, s := range append(append([]v1.ContainerStatus{}, rp.Status.InitContainerStatuses...), rp.Status.ContainerStatuses...) {
		byName[s.Name] = s
	}
	ended := rp.Status.Phase == v1.PodFailed || rp.Status.Phase == v1.PodSucceeded
	reason, message := waitingReason(rp)
	endReason, endMessage := rp.Status.Reason, rp.Status.Message
	if endReason == "" {
		endReason = pod.ReasonUnknown
	}
	if endMessage == "" {
		endMessage = fmt.Sprintf("the remote pod %s/%s ended (%s) without running this container to its end", rp.Namespace, rp.Name, rp.Status.Phase)
	}
	one := func(c *v1.Container, app bool) v1.ContainerStatus {
		s, ok := byName[c.Name]
		if !ok {
			if ended {
				return pod.Terminated(c, pod.Termination{ExitCode: pod.NotFoundExitCode, Reason: endReason,
					Message: endMessage, FinishedAt: time.Now()}, 0)
			}
			return pod.Waiting(c, reason, message, 0)
		}
		s.State = oneState(s.State)
		if app && rp.Status.Phase == v1.PodPending && s.State.Running != nil {
			// A kubelet makes the pod Running in the same update that first shows an app container
			// running; a Pending pod whose app container "runs" is interLink's virtual kubelet's
			// placeholder, set the moment it takes the pod, before its create has reached the backend
			// behind it. Passed on, the local pod would read Running, and a log followed then would
			// end at once, empty, as the container does not exist yet.
			s.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: pod.ReasonContainerCreating,
				Message: fmt.Sprintf("the remote pod %s/%s is Pending: its node has not started the container yet", rp.Namespace, rp.Name)}}
			s.Ready, s.Started = false, nil
		}
		if ended && s.State.Terminated == nil {
			// Evicted, or its node lost: the remote kubelet will never report this container again.
			s.State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: pod.NotFoundExitCode,
				Reason: endReason, Message: endMessage, FinishedAt: metav1.Now()}}
			s.Ready = false
		}
		return s
	}
	for i := range p.Spec.InitContainers {
		st.InitContainers = append(st.InitContainers, one(&p.Spec.InitContainers[i], false))
	}
	for i := range p.Spec.Containers {
		st.Containers = append(st.Containers, one(&p.Spec.Containers[i], true))
	}
	return st
}

// waitingReason is why a remote pod's containers have not started: held by the backend's gate while its
// objects are made, unschedulable there, or being created.
func waitingReason(rp *v1.Pod) (string, string) {
	if gated(rp) {
		return pod.ReasonContainerCreating, "the backend is making the pod's ConfigMaps and Secrets on the remote cluster"
	}
	for _, c := range rp.Status.Conditions {
		if c.Type == v1.PodScheduled && c.Status == v1.ConditionFalse {
			return "Unschedulable", fmt.Sprintf("the remote cluster cannot schedule pod %s/%s: %s", rp.Namespace, rp.Name, c.Message)
		}
	}
	if rp.Spec.NodeName == "" {
		return pod.ReasonContainerCreating, fmt.Sprintf("the remote pod %s/%s waits for its scheduler", rp.Namespace, rp.Name)
	}
	return pod.ReasonContainerCreating, fmt.Sprintf("the remote pod %s/%s is starting on node %s", rp.Namespace, rp.Name, rp.Spec.NodeName)
}

// oneState keeps the furthest of the states a remote status sets at once (terminated, then running, then
// waiting): a kubelet sets one, but the lab's virtual kubelet has been seen to report an init container both
// waiting and terminated while it moves on, and the contract carries exactly one.
func oneState(st v1.ContainerState) v1.ContainerState {
	switch {
	case st.Terminated != nil:
		return v1.ContainerState{Terminated: st.Terminated}
	case st.Running != nil:
		return v1.ContainerState{Running: st.Running}
	}
	return st
}
