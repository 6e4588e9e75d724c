package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Status answers for a batch of pods from the view of the engine (see view), which asks the engine only
// about pods an event touched since they were last listed, plus an inspect of the containers whose state
// changed since they were last inspected.
func (b *Backend) Status(ctx context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	out := make([]interlink.PodStatus, 0, len(pods))
	if len(pods) == 0 {
		return out, nil
	}
	uids := make([]string, 0, len(pods))
	for _, p := range pods {
		if p != nil {
			uids = append(uids, string(p.UID))
		}
	}
	groups, err := b.viewPods(ctx, uids)
	if err != nil {
		return nil, engineError("cannot list the pods' containers", err)
	}
	for _, p := range pods {
		if p == nil {
			continue
		}
		uid := string(p.UID)
		pc := groups[uid]
		known := pc != nil
		if !known && pod.ValidPodUID(uid) == nil {
			_, err := os.Stat(b.podDir(uid))
			known = !errors.Is(err, fs.ErrNotExist)
		}
		if !known {
			out = append(out, pod.NotFoundStatus(p, fmt.Sprintf("backend %q has no pod with UID %s: it was never created there, or it was deleted", b.env.Name, uid)))
			continue
		}
		if pc == nil {
			pc = &podContainers{runs: map[string][]container.Summary{}}
		}
		st := b.podStatus(ctx, p, pc, b.readState(p))
		if pc.pause == nil {
			if why := b.vanished(ctx, uid); why != "" {
				endAll(st.InitContainers, why)
				endAll(st.Containers, why)
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// vanished says why pod uid can no longer run when its pause container, which Create makes before it
// answers and only Delete removes, is gone from Docker all the same (an operator's docker rm, a wiped
// engine); it is "" while Create has not made it and whenever Docker does not say it is gone.
func (b *Backend) vanished(ctx context.Context, uid string) string {
	rec, err := b.readRecord(uid)
	if err != nil || rec.RemoteID == "" {
		return ""
	}
	start := time.Now()
	_, err = b.cli.ContainerInspect(ctx, rec.RemoteID)
	b.metrics.observe("container_inspect", start, err)
	if !cerrdefs.IsNotFound(err) {
		return ""
	}
	return fmt.Sprintf("the pod's pause container %s was removed from Docker although the pod was not deleted: "+
		"the pod no longer runs", shortID(rec.RemoteID))
}

// endAll reports every container of sts that is not terminated as ended for why, as the kubelet reports a
// container it can no longer find (reason ContainerStatusUnknown, exit code 137), so that the pod reads as
// Failed instead of waiting or running forever.
func endAll(sts []v1.ContainerStatus, why string) {
	now := time.Now()
	for i := range sts {
		if sts[i].State.Terminated != nil {
			continue
		}
		started := false
		sts[i].State = v1.ContainerState{Terminated: pod.Termination{ExitCode: pod.NotFoundExitCode,
			Reason: pod.ReasonUnknown, Message: why, FinishedAt: now}.State()}
		sts[i].Ready, sts[i].Started = false, &started
	}
}

// podStatus maps a pod's containers to Kubernetes statuses, one per spec container.
func (b *Backend) podStatus(ctx context.Context, p *v1.Pod, pc *podContainers, st podState) interlink.PodStatus {
	jobID := ""
	if pc.pause != nil {
		jobID = pc.pause.ID
	}
	out := pod.NewPodStatus(p, jobID)
	policy := pod.RestartPolicy(p)
	initPolicy := policy
	if initPolicy == v1.RestartPolicyAlways {
		initPolicy = v1.RestartPolicyOnFailure
	}
	initDone := true
	for i := range p.Spec.InitContainers {
		c := &p.Spec.InitContainers[i]
		runs := pc.runs[c.Name]
		var s v1.ContainerStatus
		if failed := pod.InitFailed(out.InitContainers, policy); failed != "" && len(runs) == 0 {
			// A later init container never runs once an earlier one failed for good.
			s = pod.NotStartedAfterInit(c, failed, pod.EndedAt(out.InitContainers, failed))
		} else if !initDone && len(runs) == 0 {
			s = pod.Waiting(c, pod.ReasonPodInitializing, "", 0)
		} else {
			s = b.containerStatus(ctx, c, runs, st.Errors[c.Name], initPolicy)
		}
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			initDone = false
		}
		out.InitContainers = append(out.InitContainers, s)
	}
	failedInit := pod.InitFailed(out.InitContainers, policy)
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		runs := pc.runs[c.Name]
		if failedInit != "" && len(runs) == 0 {
			out.Containers = append(out.Containers, pod.NotStartedAfterInit(c, failedInit, pod.EndedAt(out.InitContainers, failedInit)))
			continue
		}
		if !initDone && len(runs) == 0 {
			out.Containers = append(out.Containers, pod.Waiting(c, pod.ReasonPodInitializing, "", 0))
			continue
		}
		out.Containers = append(out.Containers, b.containerStatus(ctx, c, runs, st.Errors[c.Name], policy))
	}
	if st.Evicted != nil {
		applyEviction(out.InitContainers, st.Evicted)
		applyEviction(out.Containers, st.Evicted)
	}
	return out
}

// containerStatus maps the runs of one container (oldest first) and its recorded launch failure.
func (b *Backend) containerStatus(ctx context.Context, c *v1.Container, runs []container.Summary, failure containerError, policy v1.RestartPolicy) v1.ContainerStatus {
	var (
		last     *container.Summary
		lastTerm *pod.Termination
		restarts int32
	)
	if n := len(runs); n > 0 {
		last = &runs[n-1]
		restarts = int32(attemptOf(*last))
		if n > 1 {
			if info, err := b.runInfo(ctx, runs[n-2]); err == nil {
				t := b.ended(ctx, c, info.termination(runs[n-2].ID), runs[n-2])
				lastTerm = &t
			}
		}
	}
	if failure.Reason != "" && (last == nil || failure.Attempt > attemptOf(*last)) {
		s := pod.Waiting(c, failure.Reason, failure.Message, int32(max(failure.Attempt, 0)))
		if last != nil {
			if info, err := b.runInfo(ctx, *last); err == nil && info.phase() == runExited {
				t := b.ended(ctx, c, info.termination(last.ID), *last)
				s = pod.WithLastState(s, &t)
			}
		}
		return s
	}
	if last == nil {
		return pod.Waiting(c, pod.ReasonContainerCreating, "", 0)
	}
	info, err := b.runInfo(ctx, *last)
	if err != nil {
		return pod.Waiting(c, pod.ReasonContainerCreating, fmt.Sprintf("cannot inspect container %s: %v", shortID(last.ID), err), restarts)
	}
	var s v1.ContainerStatus
	switch info.phase() {
	case runPending:
		s = pod.Waiting(c, pod.ReasonContainerCreating, "", restarts)
	case runRunning:
		s = pod.WithLastState(pod.Running(c, info.StartedAt, restarts), lastTerm)
		if st, ok := b.shimState(last.Labels[pod.LabelPodUID], c.Name, int(restarts)); ok {
			st.OnRunning(c, &s)
		}
	default:
		t := b.ended(ctx, c, info.termination(last.ID), *last)
		if pod.ShouldRestart(policy, int(t.ExitCode)) {
			s = pod.Waiting(c, pod.ReasonCrashLoopBackOff, fmt.Sprintf("back-off restarting failed container %s", c.Name), restarts)
			s = pod.WithLastState(s, &t)
		} else {
			s = pod.WithLastState(pod.Terminated(c, t, restarts), lastTerm)
		}
	}
	s.ContainerID = "docker://" + last.ID
	s.ImageID = last.ImageID
	return s
}

// ended completes the end t of run, a run of c, with the reason and message its shim recorded when the
// shim ended it (StartError, Unhealthy, FailedPostStartHook; an OOM kill stays OOMKilled), then with the
// run's termination message.
func (b *Backend) ended(ctx context.Context, c *v1.Container, t pod.Termination, run container.Summary) pod.Termination {
	if st, ok := b.shimState(run.Labels[pod.LabelPodUID], run.Labels[pod.LabelContainer], attemptOf(run)); ok && st.Reason != "" && !t.OOMKilled {
		t.Reason, t.Message = st.Reason, st.Message
	}
	return t.WithMessage(b.terminationMessage(ctx, c, run, t))
}
