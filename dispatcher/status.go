package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Status answers for pods in request order, one status each (statuses); a pod without a UID or with a
// malformed identity refuses the whole request, before any backend is asked. An empty list is answered with
// an empty one: interLink's ping is Ping.
func (c *Core) Status(ctx context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	for i, p := range pods {
		if p == nil || p.UID == "" {
			return nil, badRequest("pod %d of the status request has no metadata.uid; send the pods with their UIDs", i)
		}
		// As for a delete: a malformed identity never named a pod here, and must not reach an engine.
		if err := pod.ValidIdentity(string(p.UID), p.Namespace, p.Name, false); err != nil {
			return nil, badRequest("pod %d of the status request: %v", i, err)
		}
	}
	if len(pods) == 0 {
		return []interlink.PodStatus{}, nil
	}
	return c.statuses(ctx, pods), nil
}

// statuses answers for pods in request order: one Status batch per backend, all at once, each within
// timeouts.status; a pod whose backend cannot answer gets its last known status.
func (c *Core) statuses(ctx context.Context, pods []*v1.Pod) []interlink.PodStatus {
	out := make([]interlink.PodStatus, len(pods))
	type group struct {
		idx  []int
		pods []*v1.Pod
	}
	groups := map[string]*group{}
	entries := make([]Entry, len(pods))
	journaled := make([]bool, len(pods))
	fresh := make([]bool, len(pods)) // answered by the backend just now
	// One read of the journal for the whole request.
	uids := make([]string, len(pods))
	for i, p := range pods {
		uids[i] = string(p.UID)
	}
	heads := c.journal.HeadsOf(uids)
	for i, p := range pods {
		name, e, inJournal, err := c.locateFrom(p, heads[i])
		entries[i], journaled[i] = e, inJournal
		var re *RouteError
		switch {
		case errors.As(err, &re):
			// The pod names a backend this dispatcher does not have: no backend can know it. Its create is
			// refused for the same reason, and that refusal is what its user must read once it came.
			out[i] = c.unknownPodStatus(p, pod.NotFoundStatus(p, err.Error()), time.Now())
			continue
		case err != nil:
			// Without the journal the pod's backend is unknown: say so and change nothing.
			out[i] = pod.WaitingStatus(p, "", "DispatcherError", err.Error())
			continue
		}
		if why := c.router.NotRunning(name); inJournal && why != "" {
			// No backend will ever report on it again: terminated, as an unknown pod, so that it can be deleted.
			out[i] = pod.TerminatedStatus(p, pod.ReasonBackendDisabled, "the pod ran on a backend this dispatcher no longer runs: "+why)
			continue
		}
		g := groups[name]
		if g == nil {
			g = &group{}
			groups[name] = g
		}
		g.idx = append(g.idx, i)
		g.pods = append(g.pods, p)
	}

	var wg sync.WaitGroup
	for name, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []*interlink.PodStatus
			var err error
			if perr := contained(c.log, name, func() { got, err = c.backendStatus(ctx, name, g.pods) }); perr != nil {
				got, err = nil, perr
			}
			for k, i := range g.idx {
				p := pods[i]
				switch {
				case err == nil && got[k] != nil:
					out[i], fresh[i] = *got[k], true
				default:
					out[i] = c.fallbackStatus(p, name, err)
				}
				if journaled[i] && entries[i].RemoteID != "" {
					out[i].JobID = entries[i].RemoteID
				}
				if !journaled[i] {
					out[i] = c.unknownPodStatus(p, out[i], time.Now())
				}
				out[i] = complete(out[i], p)
			}
		}()
	}
	wg.Wait()
	c.remember(out, entries, journaled, fresh)
	return out
}

// backendStatus asks one backend for a batch; results are matched to pods by UID, whatever the order the
// backend used, and a pod it left out gets nil.
func (c *Core) backendStatus(ctx context.Context, name string, pods []*v1.Pod) ([]*interlink.PodStatus, error) {
	b, _, err := c.backends.Backend(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeouts.Status)
	defer cancel()
	st, err := b.Status(ctx, pods)
	if err != nil {
		c.log.Warn("backend status failed; answering last known statuses", "backend", name, "pods", len(pods), "err", err)
		return nil, err
	}
	byUID := make(map[string]*interlink.PodStatus, len(st))
	for i := range st {
		byUID[st[i].PodUID] = &st[i]
	}
	out := make([]*interlink.PodStatus, len(pods))
	for i, p := range pods {
		out[i] = byUID[string(p.UID)]
	}
	return out, nil
}

// fallbackStatus is the answer for a pod its backend could not report on: the last known status, else
// waiting with the reason, which leaves the pod as it is in Kubernetes.
func (c *Core) fallbackStatus(p *v1.Pod, backendName string, err error) interlink.PodStatus {
	c.statusMu.Lock()
	last, ok := c.lastStatus[string(p.UID)]
	c.statusMu.Unlock()
	if ok {
		return last
	}
	msg := fmt.Sprintf("backend %q did not report on this pod", backendName)
	if err != nil {
		msg = fmt.Sprintf("backend %q cannot report now: %v", backendName, err)
	}
	return pod.WaitingStatus(p, "", "BackendUnavailable", msg)
}

// remember keeps the statuses of journaled pods that backends answered, in memory and in the journal, so
// that they survive a backend outage and a dispatcher restart. Only changes are written, and only for pods
// still journaled when they are: a pod deleted while its backend answered keeps nothing (see
// journalDelete). When each was last answered is kept in memory for every answer, and in the journal with
// each change. A pod created through this dispatcher and seen Running for the first time is reported to
// the observer.
func (c *Core) remember(out []interlink.PodStatus, entries []Entry, journaled, fresh []bool) {
	changed := map[string]interlink.PodStatus{}
	at := map[string]int{} // index in out of each changed pod
	now := time.Now().UTC()
	// Held until memory agrees with the journal: a delete forgets a pod's memory only after this write, so
	// that the status of a pod whose entry it removed is never kept here. Remembers run at once: of two
	// answers for one pod, the one remembered later stands, in memory and in the journal (both keep the
	// time of each).
	c.rememberMu.RLock()
	defer c.rememberMu.RUnlock()
	c.statusMu.Lock()
	for i, st := range out {
		if !journaled[i] || !fresh[i] {
			continue
		}
		if last, ok := c.lastStatus[st.PodUID]; ok && reflect.DeepEqual(last, st) {
			if now.After(c.statusAt[st.PodUID]) {
				c.statusAt[st.PodUID] = now // still remembered: its entry is there (see journalDelete)
			}
			continue
		}
		changed[st.PodUID], at[st.PodUID] = st, i
	}
	c.statusMu.Unlock()
	if len(changed) == 0 {
		return
	}
	start := time.Now()
	written, err := c.journal.SetStatuses(changed, now)
	c.obs.JournalWrite(time.Since(start), err)
	if err != nil {
		// Only the survival of these statuses across a restart is lost; the answer stands, and memory keeps
		// them for every pod not known to be deleted.
		c.log.Warn("cannot record the last known statuses in the journal", "pods", len(changed), "err", err)
		uids := slices.Collect(maps.Keys(changed))
		written = make(map[string]bool, len(uids))
		for i, h := range c.journal.HeadsOf(uids) {
			written[uids[i]] = h.Found || h.Err != nil
		}
	}
	type started struct {
		backend string
		after   time.Duration
	}
	var runs []started
	c.statusMu.Lock()
	for uid, st := range changed {
		if !written[uid] || c.statusAt[uid].After(now) {
			continue // deleted since the backend answered, or answered again since
		}
		c.lastStatus[uid], c.statusAt[uid] = st, now
		if phase := pod.Phase(st); phase != v1.PodPending && !c.seenRunning[uid] {
			c.seenRunning[uid] = true
			// A pod first seen finished ran between two polls: when it started is unknown. An adopted pod's
			// creation time is not this dispatcher's. Either would skew the histogram.
			if e := entries[at[uid]]; phase == v1.PodRunning && !e.Adopted && !e.Created.IsZero() {
				runs = append(runs, started{e.Backend, time.Since(e.Created)})
			}
		}
	}
	c.statusMu.Unlock()
	for _, r := range runs {
		c.obs.PodRunning(r.backend, r.after)
	}
}

// complete makes st answer for exactly p: its identity, and one status per spec container (init
// containers too), named and in spec order, with waiting/ContainerCreating where the backend said nothing.
// interLink takes an empty list for "all terminated".
func complete(st interlink.PodStatus, p *v1.Pod) interlink.PodStatus {
	st.PodUID, st.PodName, st.PodNamespace = string(p.UID), p.Name, p.Namespace
	st.Containers = perSpec(st.Containers, p.Spec.Containers)
	st.InitContainers = perSpec(st.InitContainers, p.Spec.InitContainers)
	return st
}

func perSpec(have []v1.ContainerStatus, spec []v1.Container) []v1.ContainerStatus {
	byName := make(map[string]v1.ContainerStatus, len(have))
	for _, c := range have {
		byName[c.Name] = c
	}
	out := make([]v1.ContainerStatus, 0, len(spec))
	for _, c := range spec {
		cs, ok := byName[c.Name]
		if !ok || reflect.DeepEqual(cs.State, v1.ContainerState{}) {
			cs = pod.Waiting(&c, pod.ReasonContainerCreating, "the backend has not reported this container yet", 0)
		}
		out = append(out, cs)
	}
	return out
}
