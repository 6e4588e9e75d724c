package podman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

const messageBackOff = "back-off restarting failed container"

// Status answers for a batch of pods from the live view (view.go): an engine call only for the pods whose
// entry is stale, plus an inspect only for containers whose state changed since the last look and that have
// finished or may have restarted. The pods are answered concurrently, a few at a time.
func (b *Backend) Status(ctx context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	out := make([]interlink.PodStatus, len(pods))
	if len(pods) == 0 {
		return out, nil
	}
	uids := make([]string, len(pods))
	for i, p := range pods {
		uids[i] = string(p.UID)
	}
	views, err := b.view.containers(ctx, uids)
	if err != nil {
		return nil, engineError(err)
	}
	b.statuses(ctx, pods, views, false, out)
	return out, nil
}

// statusWorkers bounds the pods of one batch whose statuses are worked out at the same time (each may
// inspect a container).
const statusWorkers = 8

// statuses fills out with the status of each pod from its view entry; cheap ones (List's) make no engine
// call at all, reading what the list says where no inspect is known.
func (b *Backend) statuses(ctx context.Context, pods []*v1.Pod, views map[string]podView, cheap bool, out []interlink.PodStatus) {
	sem := make(chan struct{}, statusWorkers)
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pv, listed := views[string(p.UID)]
			out[i] = b.podStatus(ctx, p, byName(pv.ctrs), listed && pv.alone, cheap)
		}()
	}
	wg.Wait()
}

// byName indexes a pod's containers (not its infra container) by their name in the pod.
func byName(list []libpod.ListContainer) map[string]*libpod.ListContainer {
	out := map[string]*libpod.ListContainer{}
	for i := range list {
		if !list[i].IsInfra {
			out[list[i].Labels[pod.LabelContainer]] = &list[i]
		}
	}
	return out
}

// snapshot is what Status needs of a record, copied under the lock.
type snapshot struct {
	known        bool
	launched     bool
	podName      string
	policy       v1.RestartPolicy
	failures     map[string]failure
	initFailed   string
	initRestarts map[string]int32
	initLast     map[string]lastRun
	eviction     *pod.Eviction
}

func (b *Backend) snapshot(uid string) snapshot {
	b.mu.RLock()
	defer b.mu.RUnlock()
	r, ok := b.records[uid]
	if !ok {
		return snapshot{}
	}
	s := snapshot{known: true, launched: r.Launched, podName: r.PodName, policy: pod.RestartPolicy(r.Pod), initFailed: r.InitFailed, eviction: r.Eviction,
		failures: map[string]failure{}, initRestarts: map[string]int32{}, initLast: map[string]lastRun{}}
	for k, v := range r.Failures {
		s.failures[k] = v
	}
	for k, v := range r.InitRestarts {
		s.initRestarts[k] = v
	}
	for k, v := range r.InitLast {
		s.initLast[k] = v
	}
	return s
}

// podStatus is the status of pod p from its containers on the engine; alone is set when they come from a
// list of this pod only. A cheap status makes no engine call (see statuses).
func (b *Backend) podStatus(ctx context.Context, p *v1.Pod, ctrs map[string]*libpod.ListContainer, alone, cheap bool) interlink.PodStatus {
	snap := b.snapshot(string(p.UID))
	if !snap.known && len(ctrs) == 0 {
		return pod.NotFoundStatus(p, "")
	}
	if snap.launched && len(ctrs) == 0 && !alone && !cheap {
		// Podman 4.3's list can miss a container that conmon is cleaning up at that very moment (seen under
		// load): ask again for this pod alone before declaring its containers gone.
		ctrs = b.relist(ctx, string(p.UID))
	}
	if snap.launched && len(ctrs) == 0 {
		return pod.NotFoundStatus(p, "the pod's containers are gone from Podman: they were removed outside the dispatcher")
	}
	if !snap.known {
		// Found on the engine by its labels but not in the data directory: answer from the engine alone.
		snap.podName = podmanName(p)
		snap.policy = pod.RestartPolicy(p)
	}
	st := pod.NewPodStatus(p, snap.podName)
	initsDone := true
	for i := range p.Spec.InitContainers {
		c := &p.Spec.InitContainers[i]
		cs := b.initStatus(ctx, c, ctrs[c.Name], snap, cheap)
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			initsDone = false
		}
		st.InitContainers = append(st.InitContainers, cs)
	}
	failedInit := pod.InitFailed(st.InitContainers, snap.policy)
	if failedInit == "" {
		failedInit = snap.initFailed
	}
	failedAt := pod.EndedAt(st.InitContainers, failedInit)
	if failedInit != "" {
		// The init containers after the failed one never run: reported terminated, as the containers are,
		// or the virtual kubelet keeps the pod Pending.
		after := false
		for i := range st.InitContainers {
			cs := &st.InitContainers[i]
			if after && cs.State.Terminated == nil {
				*cs = pod.NotStartedAfterInit(&p.Spec.InitContainers[i], failedInit, failedAt)
			}
			after = after || cs.Name == failedInit
		}
	}
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		lc := ctrs[c.Name]
		if failedInit != "" && (lc == nil || lc.StartedAt <= 0) {
			st.Containers = append(st.Containers, pod.NotStartedAfterInit(c, failedInit, failedAt))
			continue
		}
		st.Containers = append(st.Containers, b.regularStatus(ctx, c, lc, snap, initsDone, cheap))
	}
	if snap.eviction != nil {
		applyEviction(st.InitContainers, snap.eviction)
		applyEviction(st.Containers, snap.eviction)
	}
	return st
}

// relist lists the containers of pod uid alone into the view, by name; nil when there are none or the
// engine fails.
func (b *Backend) relist(ctx context.Context, uid string) map[string]*libpod.ListContainer {
	if err := b.view.listPod(ctx, uid); err != nil {
		return nil
	}
	return byName(b.view.snapshot([]string{uid})[uid].ctrs)
}

// notCreated is the status of a container the engine does not have (yet).
func notCreated(c *v1.Container, snap snapshot, initsDone bool) v1.ContainerStatus {
	if f, ok := snap.failures[c.Name]; ok {
		return f.status(c, 0)
	}
	if !initsDone {
		return pod.Waiting(c, pod.ReasonPodInitializing, "", 0)
	}
	return pod.Waiting(c, pod.ReasonContainerCreating, "", 0)
}

func (b *Backend) initStatus(ctx context.Context, c *v1.Container, lc *libpod.ListContainer, snap snapshot, cheap bool) v1.ContainerStatus {
	restarts := snap.initRestarts[c.Name]
	var last *pod.Termination
	if l, ok := snap.initLast[c.Name]; ok {
		last = &pod.Termination{ExitCode: l.ExitCode, StartedAt: l.StartedAt, FinishedAt: l.FinishedAt}
	}
	if lc == nil {
		return pod.WithLastState(notCreated(c, snap, true), last)
	}
	if f, ok := snap.failures[c.Name]; ok && f.Terminated {
		return f.status(c, restarts)
	}
	if !runningState(lc.State) && !finishedState(lc.State) {
		return notCreatedInit(c, snap, restarts, last)
	}
	if runningState(lc.State) && lc.StartedAt > 0 {
		// Podman never restarts an init container (the backend does, counted in the record): the list's
		// start time, to the second as a status reports it, is all there is to read.
		return pod.WithLastState(b.runningStatus(c, lc, time.Unix(lc.StartedAt, 0), restarts), last)
	}
	listed := lc
	lc, ins, err := b.look(ctx, lc, false, cheap)
	switch {
	case err != nil && runningState(listed.State):
		return pod.WithLastState(b.runningStatus(c, listed, time.Unix(listed.StartedAt, 0), restarts), last)
	case err != nil:
		return pod.Waiting(c, pod.ReasonUnknown, err.Error(), restarts)
	case runningState(lc.State):
		return pod.WithLastState(b.runningStatus(c, lc, ins.State.StartedAt, restarts), last)
	case !finishedState(lc.State) || ins.State.StartedAt.IsZero():
		return notCreatedInit(c, snap, restarts, last)
	}
	t := b.termination(ctx, ins, lc, c)
	if t.ExitCode != 0 && snap.initFailed != c.Name && pod.ShouldRestart(snap.policy, int(t.ExitCode)) {
		return pod.WithLastState(pod.Waiting(c, pod.ReasonCrashLoopBackOff, messageBackOff, restarts), &t)
	}
	return pod.WithLastState(pod.Terminated(c, t, restarts), last)
}

// notCreatedInit is the status of an init container that is made but has not run (yet, or again).
func notCreatedInit(c *v1.Container, snap snapshot, restarts int32, last *pod.Termination) v1.ContainerStatus {
	if f, ok := snap.failures[c.Name]; ok {
		return pod.WithLastState(f.status(c, restarts), last) // created, and never started
	}
	return pod.WithLastState(pod.Waiting(c, pod.ReasonPodInitializing, "", restarts), last)
}

func (b *Backend) regularStatus(ctx context.Context, c *v1.Container, lc *libpod.ListContainer, snap snapshot, initsDone, cheap bool) v1.ContainerStatus {
	if lc == nil {
		return notCreated(c, snap, initsDone)
	}
	if f, ok := snap.failures[c.Name]; ok && f.Terminated {
		return f.status(c, 0)
	}
	switch {
	case runningState(lc.State) && snap.policy == v1.RestartPolicyNever && lc.StartedAt > 0:
		// Never restarted (restart policy "no"): no restart count nor last run to read, and the list's
		// start time, to the second as a status reports it, is the inspect's. A pod's first status
		// costs no inspect.
		return b.runningStatus(c, lc, time.Unix(lc.StartedAt, 0), 0)
	case !runningState(lc.State) && !finishedState(lc.State):
		return notCreated(c, snap, initsDone)
	}
	listed := lc
	lc, ins, err := b.look(ctx, lc, snap.policy != v1.RestartPolicyNever, cheap)
	switch {
	case err != nil && runningState(listed.State):
		return b.runningStatus(c, listed, time.Unix(listed.StartedAt, 0), 0)
	case err != nil:
		return pod.Waiting(c, pod.ReasonUnknown, err.Error(), 0)
	case runningState(lc.State):
		return pod.WithLastState(b.runningStatus(c, lc, ins.State.StartedAt, ins.RestartCount), b.lastRun(ctx, ins, true, cheap))
	case !finishedState(lc.State) && ins.RestartCount > 0:
		// Between two runs of a restart (Podman made it again and has not started it yet).
		return pod.WithLastState(pod.Waiting(c, pod.ReasonCrashLoopBackOff, messageBackOff, ins.RestartCount), b.lastRun(ctx, ins, true, cheap))
	case !finishedState(lc.State) || ins.State.StartedAt.IsZero():
		return notCreated(c, snap, initsDone)
	}
	t := b.termination(ctx, ins, lc, c)
	if pod.ShouldRestart(snap.policy, int(t.ExitCode)) {
		// Podman restarts it at once; until then Kubernetes would show it waiting, not finished, and
		// a pod that looks finished is final for interLink.
		return pod.WithLastState(pod.Waiting(c, pod.ReasonCrashLoopBackOff, messageBackOff, ins.RestartCount), &t)
	}
	return pod.WithLastState(pod.Terminated(c, t, ins.RestartCount), b.lastRun(ctx, ins, false, cheap))
}

// runningState and finishedState sort Podman's container states: a process runs (or is paused, or is being
// stopped), or it has run and ended; any other state (created, configured, initialized) has no process yet.
func runningState(state string) bool {
	return state == "running" || state == "paused" || state == "stopping"
}

func finishedState(state string) bool { return state == "exited" || state == "stopped" }

// termination reads a finished run of c from an inspect, with the reason and message the shim left when it
// caused the end (a command that could not start, a failed probe or postStart hook), then the run's
// termination message.
func (b *Backend) termination(ctx context.Context, ins libpod.InspectContainer, lc *libpod.ListContainer, c *v1.Container) pod.Termination {
	finished := ins.State.FinishedAt
	if finished.Before(ins.State.StartedAt) {
		// Podman 4.3 can report the previous run's end after an automatic restart.
		finished = ins.State.StartedAt
	}
	t := pod.Termination{
		ExitCode: ins.State.ExitCode, OOMKilled: ins.State.OOMKilled, Message: ins.State.Error,
		StartedAt: ins.State.StartedAt, FinishedAt: finished, ContainerID: "podman://" + ins.ID,
	}
	if st, ok := b.shimState(lc, c.Name); ok && st.Exited && st.Reason != "" {
		// The shim's own kill (exit 137) is no OOM kill, whatever the events say.
		t.Reason, t.Message, t.OOMKilled = st.Reason, st.Message, false
	}
	return t.WithMessage(b.terminationMessage(ctx, lc, c, t))
}

// terminationMessage is the termination message of the run of c that ended with t (see
// pod.TerminationMessage): what it wrote to its termination file, or the end of its log when c's policy
// falls back to it. An ended run's message never changes: it is made once a run (unless reading failed)
// and kept, so that a status of a finished pod reads no file.
func (b *Backend) terminationMessage(ctx context.Context, lc *libpod.ListContainer, c *v1.Container, t pod.Termination) string {
	uid := lc.Labels[pod.LabelPodUID]
	if !pod.BindsTerminationFile(c) || pod.ValidPodUID(uid) != nil {
		return ""
	}
	key := lc.ID + "@" + t.FinishedAt.Format(time.RFC3339Nano)
	b.cacheMu.Lock()
	msg, ok := b.termMessages[key]
	b.cacheMu.Unlock()
	if ok {
		return msg
	}
	file, err := shim.ReadTerminationFile(b.shimDir(uid, c.Name))
	failed := err != nil
	msg = pod.TerminationMessage(c, t.ExitCode, file, err, func() ([]byte, error) {
		var buf bytes.Buffer
		req := backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: uid, Namespace: lc.Labels[pod.LabelNamespace],
			PodName: lc.Labels[pod.LabelPodName], ContainerName: c.Name, Opts: interlink.LogOpts{Tail: pod.MaxTerminationLogLines}}}
		err := b.Logs(ctx, req, &buf)
		failed = failed || err != nil
		return buf.Bytes(), err
	})
	if !failed {
		b.cacheMu.Lock()
		b.termMessages[key] = msg
		b.cacheMu.Unlock()
	}
	return msg
}

// runningStatus is the status of a running container, ready and started as its probes say (the shim's
// verdicts; without probes a running container is both).
func (b *Backend) runningStatus(c *v1.Container, lc *libpod.ListContainer, started time.Time, restarts int32) v1.ContainerStatus {
	cs := pod.Running(c, started, restarts)
	if st, ok := b.shimState(lc, c.Name); ok {
		st.OnRunning(c, &cs)
	}
	return cs
}

// shimState reads the shim's state files of a container; ok is false when there are none to read.
func (b *Backend) shimState(lc *libpod.ListContainer, name string) (shim.State, bool) {
	uid := lc.Labels[pod.LabelPodUID]
	if pod.ValidPodUID(uid) != nil {
		return shim.State{}, false
	}
	st, err := shim.ReadState(b.shimDir(uid, name))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			b.labelLog(lc.Labels).Warn("cannot read a container's shim state", "container", name, "err", err)
		}
		return shim.State{}, false
	}
	return st, true
}

// look inspects the container of list entry lc, and returns the entry as that inspect has it: the inspect
// is the newer of the two. A list behind it (a change whose event has not arrived yet, or was missed) would
// otherwise pair a state with another run's details: a list still showing an exit of code 1 with the
// inspect of the run Podman restarted since, whose exit code is 0, made a pod that runs look completed.
// The pod's view entry is then marked stale, so that its next status lists it again.
func (b *Backend) look(ctx context.Context, lc *libpod.ListContainer, restarting, cheap bool) (*libpod.ListContainer, libpod.InspectContainer, error) {
	ins, err := b.inspect(ctx, lc, restarting, cheap)
	if err != nil || inspectKey(ins) == listKey(lc) {
		return lc, ins, err
	}
	cur := *lc
	cur.State, cur.Pid, cur.ExitCode = ins.State.Status, ins.State.Pid, ins.State.ExitCode
	cur.StartedAt, cur.ExitedAt = ins.State.StartedAt.Unix(), ins.State.FinishedAt.Unix()
	b.view.behind(lc.Labels[pod.LabelPodUID], lc.ID)
	return &cur, ins, nil
}

// inspect returns a container's inspect, reusing the last one while the list shows the same state, process,
// start and exit as that inspect did: a restart changes the process and an exit the state. An exited
// container that its restart policy brings back may cycle within one second unseen by the list's
// whole-second times, so it is inspected afresh unless the event stream says it has not changed since the
// last inspect. A cheap look that finds no inspect to reuse reads the list's entry instead of asking the
// engine.
func (b *Backend) inspect(ctx context.Context, lc *libpod.ListContainer, restarting, cheap bool) (libpod.InspectContainer, error) {
	key := listKey(lc)
	fresh := restarting && finishedState(lc.State)
	b.cacheMu.Lock()
	e, ok := b.inspects[lc.ID]
	b.cacheMu.Unlock()
	if ok && e.key == key && (!fresh || cheap || b.view.unchanged(lc.ID, e.seq, e.at)) {
		return e.ins, nil
	}
	if cheap {
		return listedInspect(lc), nil
	}
	seq, at := b.view.mark()
	ins, err := b.eng.ContainerInspect(ctx, lc.ID)
	if err != nil {
		return ins, err
	}
	if !ins.State.Running && ins.State.ExitCode == 137 && !ins.State.OOMKilled && ins.HostConfig.Memory > 0 {
		ins.State.OOMKilled = b.oomKilled(ctx, ins)
	}
	b.cacheMu.Lock()
	b.inspects[lc.ID] = inspectEntry{key: inspectKey(ins), ins: ins, seq: seq, at: at}
	b.cacheMu.Unlock()
	return ins, nil
}

// listedInspect is what a list entry says of the fields Status reads of an inspect (times to the second).
func listedInspect(lc *libpod.ListContainer) libpod.InspectContainer {
	var ins libpod.InspectContainer
	ins.ID = lc.ID
	ins.State.Status = lc.State
	ins.State.Running = lc.State == "running"
	ins.State.ExitCode = lc.ExitCode
	ins.State.Pid = lc.Pid
	if lc.StartedAt > 0 {
		ins.State.StartedAt = time.Unix(lc.StartedAt, 0)
	}
	if lc.ExitedAt > 0 {
		ins.State.FinishedAt = time.Unix(lc.ExitedAt, 0)
	}
	ins.Config.Labels = lc.Labels
	return ins
}

// cacheKey is what both a list entry and an inspect say of a container's state, process, start and exit
// (times to the second, zero when there is none).
type cacheKey struct {
	state           string
	pid             int
	started, exited int64
}

func (k cacheKey) String() string {
	return fmt.Sprintf("%s (pid %d, started %d, exited %d)", k.state, k.pid, k.started, k.exited)
}

func listKey(lc *libpod.ListContainer) cacheKey {
	return cacheKey{state: lc.State, pid: lc.Pid, started: max(lc.StartedAt, 0), exited: max(lc.ExitedAt, 0)}
}

func inspectKey(ins libpod.InspectContainer) cacheKey {
	return cacheKey{state: ins.State.Status, pid: ins.State.Pid, started: max(ins.State.StartedAt.Unix(), 0), exited: max(ins.State.FinishedAt.Unix(), 0)}
}

type inspectEntry struct {
	key cacheKey
	ins libpod.InspectContainer
	// seq and at stamp when it was asked (view.mark).
	seq uint64
	at  time.Time
}

// pruneCache drops what is cached of containers not in seen (the ids of a full list).
func (b *Backend) pruneCache(seen map[string]bool) {
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	for id := range b.inspects {
		if !seen[id] {
			delete(b.inspects, id)
		}
	}
	for id := range b.lastStates {
		if !seen[id[:min(len(id), 64)]] {
			delete(b.lastStates, id)
		}
	}
	for key := range b.termMessages {
		if id, _, _ := strings.Cut(key, "@"); !seen[id] {
			delete(b.termMessages, key)
		}
	}
}

// oomKilled tells whether a container with a memory limit that died of SIGKILL (exit 137) was killed by the
// kernel's OOM killer. Podman 4.3's conmon misses OOM kills on some hosts (seen on cgroup v1 here), so when
// Podman does not say so itself, a SIGKILL that neither Podman's stop nor its kill sent during the run (no
// such event) is taken for the OOM killer: inside a container with a memory limit, nothing else on the
// engine's side sends SIGKILL.
func (b *Backend) oomKilled(ctx context.Context, ins libpod.InspectContainer) bool {
	sent := false
	err := b.eng.Events(ctx, libpod.EventOptions{
		Filters: map[string][]string{"container": {ins.ID}, "event": {"kill", "stop"}},
		Since:   ins.State.StartedAt.Add(-time.Second),
	}, func(e libpod.Event) error {
		sent = true
		return nil
	})
	if err != nil {
		b.labelLog(ins.Config.Labels).Warn("cannot read a container's events to tell an OOM kill", "container", ins.Name, "err", err)
		return false
	}
	return !sent
}

// lastRun finds the previous run of a restarted container from the engine's died events, which carry the
// exit code: the last one when the container runs again, the one before when it has finished again.
func (b *Backend) lastRun(ctx context.Context, ins libpod.InspectContainer, running, cheap bool) *pod.Termination {
	if ins.RestartCount == 0 {
		return nil
	}
	key := ins.ID + "/" + strconv.Itoa(int(ins.RestartCount))
	b.cacheMu.Lock()
	l, ok := b.lastStates[key]
	b.cacheMu.Unlock()
	if !ok && cheap {
		return nil
	}
	if !ok {
		runs, err := b.runs(ctx, ins.ID)
		if err != nil {
			b.labelLog(ins.Config.Labels).Warn("cannot read a container's events for its last state", "container", ins.Name, "err", err)
			return nil
		}
		idx := len(runs) - 1
		if !running {
			idx--
		}
		if idx < 0 {
			return nil
		}
		l = runs[idx]
		b.cacheMu.Lock()
		b.lastStates[key] = l
		b.cacheMu.Unlock()
	}
	return &pod.Termination{ExitCode: l.ExitCode, StartedAt: l.StartedAt, FinishedAt: l.FinishedAt}
}

// runs lists a container's finished runs, oldest first, from its start and died events.
func (b *Backend) runs(ctx context.Context, id string) ([]lastRun, error) {
	var (
		out   []lastRun
		start time.Time
	)
	err := b.eng.Events(ctx, libpod.EventOptions{Filters: map[string][]string{"container": {id}, "event": {"start", "died"}}},
		func(e libpod.Event) error {
			switch e.Action {
			case "start":
				start = e.Time()
			case "died":
				code, _ := e.ExitCode()
				out = append(out, lastRun{ExitCode: code, StartedAt: start, FinishedAt: e.Time()})
			}
			return nil
		})
	sort.SliceStable(out, func(i, j int) bool { return out[i].FinishedAt.Before(out[j].FinishedAt) })
	return out, err
}
