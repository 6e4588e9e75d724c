package dispatcher

import (
	"log/slog"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Pods a status request asks about that neither the journal nor their backend knows.
//
// interLink's virtual kubelet asks for a pod's status as soon as it holds the pod, while its create may
// still be on the way: before sending it, the virtual kubelet fetches the pod's volumes through a
// rate-limited client, which with many pods at once takes tens of seconds. Answering such a pod "not found"
// (terminated) makes Kubernetes mark it Failed before it was ever created. And a pod whose create this
// dispatcher refused must say why where its user reads it; interLink keeps the answer of a failed create
// in its own log only, and the virtual kubelet never sends that create again.

// createWait is how long after this dispatcher was first asked about it a pod that the virtual kubelet has
// no create answer for is taken to be on its way: reported waiting, not gone. It is timed from the first
// status request, not from the pod's creation in Kubernetes: a pod can sit unscheduled for longer than this
// before the virtual kubelet takes it, and then its create is on its way like any other's.
const createWait = 5 * time.Minute

// annotationJobID is where the virtual kubelet keeps the PodJID of a create's answer.
const annotationJobID = "JobID"

// Refused pods are reported with all containers terminated with this reason and exit code, and the
// create's answer as message, so that Kubernetes marks them Failed with the reason where kubectl shows it.
const (
	ReasonCreateRefused   = "CreateRefused"
	createRefusedExitCode = 1
)

// Bounds of the memory (and the journal) of refused creates: interLink never retries one, so a refusal
// matters while the pod is still in Kubernetes, and a flood of bad pods must not grow the dispatcher
// without end.
const (
	refusalTTL = time.Hour
	refusalMax = 10000
)

// Bounds of the memory of first status requests: a pod is remembered while the virtual kubelet keeps asking
// about it (it asks every few seconds while it holds the pod), forgotten when its create or delete arrives
// or after askTTL without a request, and a flood of unknown pods must not grow the dispatcher without end.
// A pod dropped at the bound only starts its wait again.
const (
	askTTL = time.Hour
	askMax = 10000
)

// asks remembers, by pod UID, when this dispatcher first and last got a status request for a pod it does not
// know and whose create may be on its way. The zero value is ready to use.
type asks struct {
	mu sync.Mutex
	m  map[string]ask
}

type ask struct{ first, last time.Time }

// first records a status request for uid at now and returns when the first one still remembered came.
func (as *asks) first(uid string, now time.Time) time.Time {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.m == nil {
		as.m = map[string]ask{}
	}
	a, ok := as.m[uid]
	if ok && now.Sub(a.last) > askTTL {
		ok = false
	}
	if !ok {
		if len(as.m) >= askMax {
			for k, a := range as.m {
				if now.Sub(a.last) > askTTL {
					delete(as.m, k)
				}
			}
			for k := range as.m {
				if len(as.m) < askMax {
					break
				}
				delete(as.m, k)
			}
		}
		a.first = now
	}
	a.last = now
	as.m[uid] = a
	return a.first
}

func (as *asks) forget(uid string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	delete(as.m, uid)
}

// refusals remembers the answers of failed creates by pod UID, in memory and, when it has one, in the
// journal, so that a restarted dispatcher still reports them. The zero value keeps them in memory only.
type refusals struct {
	mu      sync.Mutex
	m       map[string]Refusal
	journal *Journal
	log     *slog.Logger
}

// load takes back the refusals the journal holds, less those older than refusalTTL, which it removes.
func (rs *refusals) load(j *Journal, log *slog.Logger, now time.Time) error {
	all, stale, err := j.Refusals()
	if err != nil {
		return err
	}
	for uid, r := range all {
		if now.Sub(r.At) > refusalTTL {
			stale = append(stale, uid)
			delete(all, uid)
		}
	}
	if err := j.DeleteRefusals(stale...); err != nil {
		return err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.m, rs.journal, rs.log = all, j, log
	return nil
}

func (rs *refusals) remember(uid, message string, now time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = map[string]Refusal{}
	}
	var evicted []string
	if len(rs.m) >= refusalMax {
		for k, r := range rs.m {
			if now.Sub(r.At) > refusalTTL {
				delete(rs.m, k)
				evicted = append(evicted, k)
			}
		}
		for k := range rs.m {
			if len(rs.m) < refusalMax {
				break
			}
			delete(rs.m, k)
			evicted = append(evicted, k)
		}
	}
	r := Refusal{Message: message, At: now}
	rs.m[uid] = r
	if rs.journal == nil {
		return
	}
	// The create was answered with the refusal already; a journal that cannot keep it costs only its
	// report after a restart.
	if err := rs.journal.PutRefusal(uid, r, evicted); err != nil {
		rs.log.Warn("cannot record a refused create in the journal; its status says why until the dispatcher restarts",
			"pod_uid", uid, "err", err)
	}
}

// forget drops uid's refusal; it costs a journal write only when there is one.
func (rs *refusals) forget(uid string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if _, ok := rs.m[uid]; !ok {
		return
	}
	delete(rs.m, uid)
	if rs.journal == nil {
		return
	}
	if err := rs.journal.DeleteRefusals(uid); err != nil {
		rs.log.Warn("cannot remove a refused create from the journal", "pod_uid", uid, "err", err)
	}
}

func (rs *refusals) get(uid string, now time.Time) (Refusal, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.m[uid]
	if ok && now.Sub(r.At) > refusalTTL {
		return Refusal{}, false
	}
	return r, ok
}

// unknownPodStatus is the answer for p, which the journal does not hold, given its backend's answer st (or,
// for a pod naming a backend this dispatcher does not have, the route's refusal as a not-found status): st
// unless it says p is not found. Then, if this dispatcher refused p's create, every container is terminated
// with the refusal; if the virtual kubelet has no create answer for p yet (no JobID annotation) within
// createWait of the first status request for p, every container is waiting for the create; else st.
func (c *Core) unknownPodStatus(p *v1.Pod, st interlink.PodStatus, now time.Time) interlink.PodStatus {
	if !notFound(st) {
		return st
	}
	uid := string(p.UID)
	if r, ok := c.refused.get(uid, now); ok {
		return refusedStatus(p, st.JobID, r)
	}
	if _, answered := p.Annotations[annotationJobID]; answered {
		return st
	}
	if first := c.asked.first(uid, now); now.Sub(first) < createWait {
		return pod.WaitingStatus(p, st.JobID, pod.ReasonContainerCreating,
			"the dispatcher has not received this pod's create yet (the virtual kubelet sends it once the pod's volumes are fetched)")
	}
	return st
}

// notFound tells whether st says its pod is unknown: every container terminated with reason NotFound.
func notFound(st interlink.PodStatus) bool {
	all := append(append([]v1.ContainerStatus{}, st.InitContainers...), st.Containers...)
	for _, cs := range all {
		if cs.State.Terminated == nil || cs.State.Terminated.Reason != pod.ReasonNotFound {
			return false
		}
	}
	return len(all) > 0
}

func refusedStatus(p *v1.Pod, jobID string, r Refusal) interlink.PodStatus {
	st := pod.NewPodStatus(p, jobID)
	t := pod.Termination{ExitCode: createRefusedExitCode, Reason: ReasonCreateRefused,
		Message: "the dispatcher refused this pod: " + r.Message, FinishedAt: r.At}
	for i := range p.Spec.InitContainers {
		st.InitContainers = append(st.InitContainers, pod.Terminated(&p.Spec.InitContainers[i], t, 0))
	}
	for i := range p.Spec.Containers {
		st.Containers = append(st.Containers, pod.Terminated(&p.Spec.Containers[i], t, 0))
	}
	return st
}
