package pod

import (
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// NextPhase is the phase interLink's virtual kubelet gives p after reading status from a plugin (its
// checkPodsStatus, 0.6.x). It is the rule a backend's statuses are judged by, so it is reproduced with its
// corners rather than idealised:
//
//   - a pod already Failed or Succeeded stays so, and a status whose UID is not the pod's changes nothing;
//   - init containers: a running or waiting one holds the pod Pending (and its containers are not looked
//     at); one terminated non-zero makes the pod Failed, but only once every container is terminated too;
//   - containers: when all of those listed are terminated the pod is Failed if any exit code (or an init
//     container's) is non-zero, else Succeeded; an empty list counts as all terminated; otherwise any
//     running container makes it Running;
//   - anything else (waiting containers, empty states) leaves the phase as it was: p.Status.Phase, or
//     Pending for a pod without one (a nil p too, taken to be the pod st is about).
//
// So a backend whose init container failed must report the containers that never ran as terminated, or
// Kubernetes keeps the pod Pending forever.
func NextPhase(p *v1.Pod, st interlink.PodStatus) v1.PodPhase {
	current := v1.PodPending
	if p != nil && p.Status.Phase != "" {
		current = p.Status.Phase
	}
	if current == v1.PodFailed || current == v1.PodSucceeded {
		return current
	}
	if p != nil && string(p.UID) != st.PodUID {
		return current
	}

	initWaiting, initRunning, initFailed := false, false, false
	initTerminated := 0
	for _, c := range st.InitContainers {
		switch {
		case c.State.Terminated != nil:
			initTerminated++
			if c.State.Terminated.ExitCode != 0 {
				initFailed = true
			}
		case c.State.Waiting != nil:
			initWaiting = true
		case c.State.Running != nil:
			initRunning = true
		}
	}
	if len(st.InitContainers) > 0 && initTerminated == len(st.InitContainers) {
		initWaiting = false
	}

	terminated, failed, running := 0, false, false
	if !initWaiting && !initRunning {
		for _, c := range st.Containers {
			switch {
			case c.State.Terminated != nil:
				terminated++
				if c.State.Terminated.ExitCode != 0 {
					failed = true
				}
			case c.State.Running != nil:
				running = true
			}
		}
	}

	switch {
	case terminated == len(st.Containers):
		if failed || initFailed {
			return v1.PodFailed
		}
		return v1.PodSucceeded
	case initRunning || initWaiting:
		return v1.PodPending
	case running:
		return v1.PodRunning
	}
	return current
}

// Phase is the phase st alone leads the virtual kubelet to, for a pod it has no phase for yet (Pending): see
// NextPhase, whose rules it follows.
func Phase(st interlink.PodStatus) v1.PodPhase { return NextPhase(nil, st) }
