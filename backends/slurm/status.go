package slurm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// jobView is what is known of a pod's job: from squeue while SLURM lists it, else from the files the job and
// the backend left in the pod's directory.
type jobView struct {
	ID      string
	Class   int    // jobPending, jobActive or jobOver
	State   string // SLURM's job state ("" when the job left no trace of how it ended)
	Reason  string // SLURM's state reason
	Desc    string // SLURM's state description
	Ended   time.Time
	NoQueue bool // squeue could not be asked: the job is assumed to go on as its files say
	Dir     string
}

// outputTail returns the end of the job's own output (bash's and SLURM's messages), for the message of a
// container whose job ended before it could say why.
func (v jobView) outputTail() string {
	f, err := os.Open(filepath.Join(v.Dir, jobOutFile))
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 400
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		_, _ = f.Seek(fi.Size()-max, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	return strings.TrimSpace(string(data))
}

// Status implements backend.Backend: one squeue run for the whole batch, then each pod's own files. A pod
// without a directory is NotFound; it never fails the batch.
func (b *Backend) Status(ctx context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	out := make([]interlink.PodStatus, len(pods))
	if len(pods) == 0 {
		return out, nil
	}
	recs := make([]*podRecord, len(pods))
	var jobIDs []string
	for i, p := range pods {
		if p == nil || pod.ValidPodUID(string(p.UID)) != nil {
			continue
		}
		rec, err := readRecord(b.podDir(string(p.UID)))
		if err != nil {
			if !notExist(err) {
				b.log.Error("cannot read a pod's record", "pod_uid", p.UID, "namespace", p.Namespace, "name", p.Name, "err", err)
			}
			continue
		}
		recs[i] = rec
		if rec.JobID != "" {
			jobIDs = append(jobIDs, rec.JobID)
		}
	}
	var jobs map[string]*squeueJob
	var qerr error
	if len(jobIDs) > 0 {
		if jobs, qerr = b.queueJobs(ctx, jobIDs...); qerr != nil {
			b.log.Warn("squeue failed; answering from the pods' files", "err", qerr)
		}
	}
	for i, p := range pods {
		if p == nil {
			p = &v1.Pod{}
		}
		out[i] = b.podStatus(p, recs[i], jobs, qerr)
	}
	return out, nil
}

func (b *Backend) podStatus(p *v1.Pod, rec *podRecord, jobs map[string]*squeueJob, qerr error) interlink.PodStatus {
	if rec == nil {
		return pod.NotFoundStatus(p, "")
	}
	if rec.JobID == "" {
		return pod.WaitingStatus(p, "", pod.ReasonContainerCreating, "the pod's SLURM job is being submitted")
	}
	dir := b.podDir(rec.UID)
	job := b.viewJob(rec, dir, jobs, qerr)
	st := pod.NewPodStatus(p, rec.JobID)
	if job.Class == jobPending {
		reason := job.Reason
		if reason == "" || reason == "None" {
			reason = "Pending"
		}
		msg := fmt.Sprintf("SLURM job %s is pending: %s", job.ID, reason)
		if job.Desc != "" {
			msg += " (" + job.Desc + ")"
		}
		for i := range p.Spec.InitContainers {
			st.InitContainers = append(st.InitContainers, pod.Waiting(&p.Spec.InitContainers[i], reason, msg, 0))
		}
		for i := range p.Spec.Containers {
			st.Containers = append(st.Containers, pod.Waiting(&p.Spec.Containers[i], reason, msg, 0))
		}
		return st
	}
	stopAt, stopping := fileTime(filepath.Join(dir, terminatingFile))
	initsDone, initFailed := true, failedInit{}
	for i := range p.Spec.InitContainers {
		c := &p.Spec.InitContainers[i]
		s := readCtrState(filepath.Join(dir, containersDir, c.Name), filepath.Join(dir, shimDir, c.Name))
		st.InitContainers = append(st.InitContainers, b.withTerminationMessage(rec, c, containerStatus(c, s, job, stopAt, stopping, initsDone, initFailed)))
		if s.Kind != "terminated" || s.Term.ExitCode != 0 {
			if initsDone && s.Kind == "terminated" {
				initFailed = failedInit{name: c.Name, at: s.Term.FinishedAt}
			}
			initsDone = false
		}
	}
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		s := readCtrState(filepath.Join(dir, containersDir, c.Name), filepath.Join(dir, shimDir, c.Name))
		st.Containers = append(st.Containers, b.withTerminationMessage(rec, c, containerStatus(c, s, job, stopAt, stopping, initsDone, initFailed)))
	}
	if ev := readEviction(dir); ev != nil {
		// The containers that the eviction stopped end Evicted (137); those that had not started never will.
		for _, list := range [][]v1.ContainerStatus{st.InitContainers, st.Containers} {
			for _, cs := range list {
				if cs.State.Running != nil || (cs.State.Terminated != nil && !cs.State.Terminated.FinishedAt.Time.Before(ev.Time.Add(-time.Second))) {
					ev.Killed = append(ev.Killed, cs.Name)
				}
			}
		}
		byName := func(cs *v1.ContainerStatus) string { return cs.Name }
		ev.Apply(st.InitContainers, byName)
		ev.Apply(st.Containers, byName)
	}
	return st
}

// withTerminationMessage adds to cs, the status of container c of the pod rec, the termination message of
// its terminated run (see pod.TerminationMessage): what the run wrote to its termination file, or the end
// of its log when c's policy falls back to it.
func (b *Backend) withTerminationMessage(rec *podRecord, c *v1.Container, cs v1.ContainerStatus) v1.ContainerStatus {
	term := cs.State.Terminated
	if term == nil || !pod.BindsTerminationFile(c) {
		return cs
	}
	file, err := shim.ReadTerminationFile(filepath.Join(b.podDir(rec.UID), shimDir, c.Name))
	msg := pod.TerminationMessage(c, term.ExitCode, file, err, func() ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var buf bytes.Buffer
		err := b.Logs(ctx, backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: rec.UID, Namespace: rec.Namespace,
			PodName: rec.Name, ContainerName: c.Name, Opts: interlink.LogOpts{Tail: pod.MaxTerminationLogLines}}}, &buf)
		return buf.Bytes(), err
	})
	term.Message = pod.Termination{Message: term.Message}.WithMessage(msg).Message
	return cs
}

// readEviction reads the eviction the job recorded, nil when there is none.
func readEviction(dir string) *pod.Eviction {
	data, err := os.ReadFile(filepath.Join(dir, evictedFile))
	if err != nil {
		return nil
	}
	at, msg, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
	t, ok := unixTime(at)
	if !ok {
		return nil
	}
	return &pod.Eviction{Message: msg, Time: t}
}

// viewJob finds what is known of the pod's job. A job that squeue lists under the pod's id but that runs in
// another directory is not the pod's (SLURM reused the id): the pod is then answered from its files only.
func (b *Backend) viewJob(rec *podRecord, dir string, jobs map[string]*squeueJob, qerr error) jobView {
	v := jobView{ID: rec.JobID, Dir: dir}
	if j, ok := jobs[rec.JobID]; ok && (j.WorkDir == "" || filepath.Clean(j.WorkDir) == dir) {
		v.State, v.Reason, v.Desc = strings.ToUpper(j.JobState), j.StateReason, j.StateDescription
		v.Class = stateClass(v.State)
		if j.EndTime > 0 {
			v.Ended = time.Unix(j.EndTime, 0)
		}
		if v.Class == jobOver {
			if _, err := readJobState(dir); notExist(err) {
				var code int64
				if j.ExitCode != nil {
					code = *j.ExitCode
				}
				if err := writeJobState(dir, &jobState{State: v.State, Reason: v.Reason, ExitCode: code, Ended: v.Ended}); err != nil {
					b.log.Warn("cannot record a job's final state", "pod_uid", rec.UID, "namespace", rec.Namespace, "name", rec.Name, "job_id", rec.JobID, "err", err)
				}
			}
		}
		return v
	}
	if qerr != nil {
		// Without squeue nothing says the job ended, unless its files do.
		v.Class, v.NoQueue = jobActive, true
	}
	if js, err := readJobState(dir); err == nil {
		v.Class, v.State, v.Reason, v.Ended = jobOver, js.State, js.Reason, js.Ended
		return v
	}
	if w := readWords(filepath.Join(dir, jobFinishedFile)); len(w) >= 2 {
		v.Class, v.State = jobOver, "COMPLETED"
		if w[1] != "0" {
			v.State = "FAILED"
		}
		v.Ended, _ = unixTime(w[0])
		return v
	}
	if qerr == nil {
		// Gone from the queue with no record of its end: it was purged while nobody looked, or killed
		// before it could write anything.
		v.Class = jobOver
		if t, ok := fileTime(filepath.Join(dir, jobOutFile)); ok {
			v.Ended = t
		}
	}
	return v
}

// killStates are the job states in which SLURM stopped the job's processes itself; they become the reason of
// the containers it stopped.
var killStates = map[string]string{
	"TIMEOUT":       "SLURM job %s reached its time limit",
	"CANCELLED":     "SLURM job %s was cancelled",
	"OUT_OF_MEMORY": "SLURM job %s ran out of memory",
	"NODE_FAIL":     "the node of SLURM job %s failed",
	"PREEMPTED":     "SLURM job %s was preempted",
	"DEADLINE":      "SLURM job %s reached its deadline",
	"BOOT_FAIL":     "the node of SLURM job %s failed to boot",
}

// containerStatus builds one container's status from its files and what is known of the job.
// failedInit is the init container whose failure ended the pod, and when it ended.
type failedInit struct {
	name string
	at   time.Time
}

func containerStatus(c *v1.Container, s ctrState, job jobView, stopAt time.Time, stopping, initsDone bool, initFailed failedInit) v1.ContainerStatus {
	withLast := func(cs v1.ContainerStatus) v1.ContainerStatus { return pod.WithLastState(cs, s.Last) }
	_, killed := killStates[job.State]
	stoppedByJob := stopping && s.Kind == "terminated" && !s.Term.FinishedAt.Before(stopAt.Add(-time.Second))
	if job.Class != jobOver {
		switch s.Kind {
		case "running":
			cs := pod.Running(c, s.Started, s.Restarts)
			if s.Shim != nil {
				s.Shim.OnRunning(c, &cs)
			}
			return withLast(cs)
		case "waiting":
			return withLast(pod.Waiting(c, s.Reason, s.Message, s.Restarts))
		case "terminated":
			if stoppedByJob && !job.NoQueue {
				// The job is being stopped and SLURM has not said why yet: the final word comes with its state.
				return withLast(pod.Running(c, s.Term.StartedAt, s.Restarts))
			}
			return withLast(pod.Terminated(c, s.Term, s.Restarts))
		}
		switch {
		case job.NoQueue:
			return pod.Waiting(c, pod.ReasonContainerCreating, "SLURM cannot be asked about job "+job.ID+" now", 0)
		case initFailed.name != "":
			return notRun(c, initFailed)
		case !initsDone:
			return pod.Waiting(c, pod.ReasonPodInitializing, "", 0)
		}
		return pod.Waiting(c, pod.ReasonContainerCreating, "SLURM job "+job.ID+" is starting the container", 0)
	}

	// The job is over: every container's state is final.
	msg := fmt.Sprintf("SLURM job %s ended with state %s", job.ID, job.State)
	if f, ok := killStates[job.State]; ok {
		msg = fmt.Sprintf(f, job.ID)
	}
	if job.State == "" {
		msg = fmt.Sprintf("SLURM job %s left the queue without recording how it ended", job.ID)
	}
	if s.Kind == "terminated" {
		if killed && stoppedByJob && !s.Term.OOMKilled {
			s.Term.Reason, s.Term.Message = job.State, msg
		}
		return withLast(pod.Terminated(c, s.Term, s.Restarts))
	}
	if initFailed.name != "" && s.Kind == "" {
		return notRun(c, initFailed)
	}
	t := pod.Termination{ExitCode: 137, Reason: job.State, Message: msg, FinishedAt: job.Ended}
	if !killed {
		t.Reason = pod.ReasonUnknown
		if out := job.outputTail(); out != "" {
			t.Message += "; the job's output ends with: " + out
		}
	}
	switch s.Kind {
	case "running":
		t.StartedAt = s.Started
	case "waiting":
		if s.Last != nil {
			t.StartedAt = s.Last.StartedAt
		}
	}
	if t.FinishedAt.IsZero() {
		t.FinishedAt = time.Now()
	}
	if t.StartedAt.IsZero() {
		t.StartedAt = t.FinishedAt
	}
	return withLast(pod.Terminated(c, t, s.Restarts))
}

// notRun is the status of a container that never ran because an init container failed for good: terminated,
// so that the virtual kubelet fails the pod instead of keeping it Pending, the same as on the other backends.
func notRun(c *v1.Container, initFailed failedInit) v1.ContainerStatus {
	return pod.NotStartedAfterInit(c, initFailed.name, initFailed.at)
}
