package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// podContainers are the containers of one pod as the engine lists them.
type podContainers struct {
	pause *container.Summary
	// runs holds each pod container's runs by container name, oldest attempt first.
	runs map[string][]container.Summary
}

// groupByPod groups listed containers by pod UID, and each pod's runs by container name and attempt.
func groupByPod(cs []container.Summary) map[string]*podContainers {
	out := map[string]*podContainers{}
	for i := range cs {
		c := &cs[i]
		uid := c.Labels[pod.LabelPodUID]
		pc := out[uid]
		if pc == nil {
			pc = &podContainers{runs: map[string][]container.Summary{}}
			out[uid] = pc
		}
		if c.Labels[pod.LabelRole] == pod.RolePause {
			pc.pause = c
			continue
		}
		name := c.Labels[pod.LabelContainer]
		pc.runs[name] = append(pc.runs[name], *c)
	}
	for _, pc := range out {
		for _, runs := range pc.runs {
			sort.Slice(runs, func(i, j int) bool { return attemptOf(runs[i]) < attemptOf(runs[j]) })
		}
	}
	return out
}

func attemptOf(c container.Summary) int {
	n, _ := strconv.Atoi(c.Labels[labelAttempt])
	return n
}

// runInfo is what Status needs of a container beyond the list: its times, exit code and OOM flag.
type runInfo struct {
	Status     string
	ExitCode   int
	OOMKilled  bool
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	Created    time.Time
}

// phase classifies a run for the kubelet's state machine.
type runPhase int

const (
	runPending runPhase = iota // created, not started yet
	runRunning
	runExited // exited, or failed to start (Error is set)
)

func (r runInfo) phase() runPhase {
	switch r.Status {
	case "running", "paused", "restarting":
		return runRunning
	case "created":
		if r.Error != "" {
			return runExited
		}
		return runPending
	}
	return runExited
}

// termination is the run's end as a Kubernetes terminated state. The engine's view is completed by what
// the run's shim recorded (see ended).
func (r runInfo) termination(id string) pod.Termination {
	t := pod.Termination{
		ExitCode: int32(r.ExitCode), OOMKilled: r.OOMKilled, Message: r.Error,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, ContainerID: "docker://" + id,
	}
	if r.Status == "created" && r.Error != "" { // the engine could not start it (bad command, mount...)
		t.Reason = pod.ReasonStartError
		if t.ExitCode == 0 {
			t.ExitCode = 128
		}
		// The engine stamps neither start nor finish of a run that never started: its creation time
		// stands for both, a fixed time from which the restart back-off counts.
		if t.FinishedAt.IsZero() {
			t.FinishedAt = r.Created
		}
		if t.StartedAt.IsZero() {
			t.StartedAt = r.Created
		}
	}
	return t
}

// inspectCache keeps each container's inspected run info for as long as the list shows it in the same
// state: a run's start and end never change, so a status call inspects only containers that changed.
type inspectCache struct {
	mu      sync.Mutex
	entries map[string]inspectEntry
}

type inspectEntry struct {
	state string
	info  runInfo
	// message is an ended run's termination message, once made (terminationMessage); nil until then.
	message *string
}

// message returns the termination message cached for container id by setMessage.
func (c *inspectCache) message(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e.message == nil {
		return "", false
	}
	return *e.message, true
}

// setMessage caches the termination message of id, an ended run, beside its inspect.
func (c *inspectCache) setMessage(id, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		e.message = &msg
		c.entries[id] = e
	}
}

// runInfo returns the run info of a listed container, inspecting it only when its state changed.
func (b *Backend) runInfo(ctx context.Context, c container.Summary) (runInfo, error) {
	b.inspects.mu.Lock()
	e, ok := b.inspects.entries[c.ID]
	b.inspects.mu.Unlock()
	if ok && e.state == string(c.State) {
		return e.info, nil
	}
	start := time.Now()
	in, err := b.cli.ContainerInspect(ctx, c.ID)
	b.metrics.observe("container_inspect", start, err)
	if err != nil {
		return runInfo{}, err
	}
	info, maybeOOM, err := runInfoOf(in)
	if err != nil {
		return info, fmt.Errorf("container %s: %v", shortID(c.ID), err)
	}
	if maybeOOM {
		info.OOMKilled = b.oomEvent(ctx, c.ID, info)
	}
	b.inspects.mu.Lock()
	// Cached under the state the inspect saw, so that a change between list and inspect is seen next time.
	b.inspects.entries[c.ID] = inspectEntry{state: info.Status, info: info}
	b.inspects.mu.Unlock()
	return info, nil
}

// runInfoOf is what an inspect of a container says of its run. maybeOOM asks for the engine's OOM events:
// the run was killed (137) under a memory limit, and the inspect does not say the kernel's OOM killer did it.
func runInfoOf(in container.InspectResponse) (info runInfo, maybeOOM bool, err error) {
	if in.ContainerJSONBase == nil {
		return info, false, fmt.Errorf("the engine's inspect has no state")
	}
	st := in.State
	if st == nil {
		return info, false, nil
	}
	info = runInfo{Status: string(st.Status), ExitCode: st.ExitCode, OOMKilled: st.OOMKilled, Error: st.Error,
		StartedAt: parseTime(st.StartedAt), FinishedAt: parseTime(st.FinishedAt), Created: parseTime(in.Created)}
	maybeOOM = info.phase() == runExited && info.ExitCode == 137 && !info.OOMKilled && in.HostConfig != nil && in.HostConfig.Memory > 0
	// The engine stamps StartedAt once the start call returns, which can be after a quick process has
	// already exited; a run never ends before it starts.
	if !info.FinishedAt.IsZero() && info.FinishedAt.Before(info.StartedAt) {
		info.StartedAt = info.FinishedAt
	}
	return info, maybeOOM, nil
}

// oomEvent tells whether the engine logged an OOM event for the run. Docker sets State.OOMKilled only when
// the kernel's OOM notice reaches it before the process's exit (on a busy host it can come just after: seen
// in the lab), but it logs the "oom" event either way.
func (b *Backend) oomEvent(ctx context.Context, id string, r runInfo) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	f := filters.NewArgs(filters.Arg("container", id), filters.Arg("event", string(events.ActionOOM)))
	start := time.Now()
	msgs, errs := b.cli.Events(ctx, events.ListOptions{Filters: f,
		Since: strconv.FormatInt(r.StartedAt.Add(-time.Second).Unix(), 10), Until: strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)})
	select {
	case <-msgs:
		b.metrics.observe("events", start, nil)
		return true
	case err := <-errs: // io.EOF once the events up to Until are read, none of them an OOM
		if errors.Is(err, io.EOF) {
			err = nil
		}
		b.metrics.observe("events", start, err)
		if err != nil {
			b.log.Warn("cannot read a container's events to tell an OOM kill", "container", shortID(id), "err", err)
		}
		return false
	}
}

// prune forgets containers that are gone from a full list.
func (c *inspectCache) prune(listed []container.Summary) {
	keep := make(map[string]bool, len(listed))
	for _, s := range listed {
		keep[s.ID] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.entries {
		if !keep[id] {
			delete(c.entries, id)
		}
	}
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// listPod lists the containers of one pod, and puts them in the view.
func (b *Backend) listPod(ctx context.Context, uid string) (*podContainers, error) {
	start, seen := time.Now(), b.view.mark()
	cs, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: b.ownFilter(pod.LabelPodUID, uid)})
	b.metrics.observe("container_list", start, err)
	if err != nil {
		return nil, err
	}
	b.view.replacePod(uid, cs, seen)
	if pc := groupByPod(cs)[uid]; pc != nil {
		return pc, nil
	}
	return &podContainers{runs: map[string][]container.Summary{}}, nil
}
