package dispatcher

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/adminapi"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// PodFilter selects pods by exact values; an empty field selects every pod.
type PodFilter struct {
	Backend, Namespace, Name string
	Phase                    v1.PodPhase
}

// podPhasesAll are the phases a PodFilter may name.
var podPhasesAll = []v1.PodPhase{v1.PodPending, v1.PodRunning, v1.PodSucceeded, v1.PodFailed, v1.PodUnknown}

// Check refuses a filter naming a phase Kubernetes does not have, as a *RequestError.
func (f PodFilter) Check() error {
	if f.Phase != "" && !slices.Contains(podPhasesAll, f.Phase) {
		return badRequest("phase %q is not a pod phase; use Pending, Running, Succeeded, Failed or Unknown", f.Phase)
	}
	return nil
}

func (f PodFilter) matches(s adminapi.PodSummary) bool {
	return (f.Backend == "" || f.Backend == s.Backend) && (f.Namespace == "" || f.Namespace == s.Namespace) &&
		(f.Name == "" || f.Name == s.Name) && (f.Phase == "" || f.Phase == s.Phase)
}

// Pods lists the journaled pods that f selects, sorted by namespace and name, from the journal and the last
// known statuses: no backend is asked, so that the list stays cheap with many pods.
func (c *Core) Pods(f PodFilter) ([]adminapi.PodSummary, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	entries, err := c.journal.Heads()
	if err != nil {
		return nil, fmt.Errorf("cannot read the journal: %w", err)
	}
	out := []adminapi.PodSummary{}
	c.statusMu.Lock()
	for _, e := range entries {
		if s := c.summary(e); f.matches(s) {
			out = append(out, s)
		}
	}
	c.statusMu.Unlock()
	slices.SortFunc(out, func(a, b adminapi.PodSummary) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.UID, b.UID))
	})
	return out, nil
}

// Pod is one journaled pod: its status as a status request for the pod its create carried answers it (its backend asked now, with the
// fallbacks of statuses when it cannot answer), and its summary refreshed by that answer. A UID the journal
// does not hold is backend.KindNotFound.
func (c *Core) Pod(ctx context.Context, uid string) (adminapi.PodSummary, interlink.PodStatus, error) {
	if err := pod.ValidPodUID(uid); err != nil {
		return adminapi.PodSummary{}, interlink.PodStatus{}, &RequestError{err.Error()}
	}
	e, found, err := c.journal.Get(uid)
	if err != nil {
		return adminapi.PodSummary{}, interlink.PodStatus{}, fmt.Errorf("cannot read the journal: %w", err)
	}
	if !found {
		return adminapi.PodSummary{}, interlink.PodStatus{}, backend.NotFound("no pod with UID %s is known to the dispatcher", uid)
	}
	p, created, err := c.journal.Pod(uid)
	if err != nil {
		return adminapi.PodSummary{}, interlink.PodStatus{}, fmt.Errorf("cannot read the journal: %w", err)
	}
	if created {
		if e.RemoteID != "" {
			// As the virtual kubelet carries it after the create (see skeleton).
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			p.Annotations[annotationJobID] = e.RemoteID
		}
	} else {
		c.statusMu.Lock()
		p = c.skeleton(e)
		c.statusMu.Unlock()
	}
	st := c.statuses(ctx, []*v1.Pod{p})[0]
	// Read again: the entry may have changed (reconciliation, a delete) while its backend answered.
	if e2, found, err := c.journal.Get(uid); err == nil && found {
		e = e2
	}
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	return c.summary(e), st, nil
}

// skeleton is the pod of a journal entry without its create (adopted, or journaled before the journal kept
// pods) as a status request would carry it, as far as the journal knows it: its identity, its remote id where the virtual kubelet keeps it, and its containers by name (from its
// create, else from its last known status). The caller holds statusMu.
func (c *Core) skeleton(e Entry) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(e.UID), Namespace: e.Namespace, Name: e.Name}}
	if e.RemoteID != "" {
		p.Annotations = map[string]string{annotationJobID: e.RemoteID}
	}
	inits, conts := e.InitContainers, e.Containers
	if len(inits) == 0 && len(conts) == 0 {
		if st, _, ok := c.lastKnown(e); ok {
			inits, conts = statusNames(st.InitContainers), statusNames(st.Containers)
		}
	}
	for _, n := range inits {
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n})
	}
	for _, n := range conts {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: n})
	}
	return p
}

func statusNames(cs []v1.ContainerStatus) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

// summary is the PodSummary of e with its last known status. The caller holds statusMu.
func (c *Core) summary(e Entry) adminapi.PodSummary {
	s := adminapi.PodSummary{UID: e.UID, Namespace: e.Namespace, Name: e.Name, Backend: e.Backend, RemoteID: e.RemoteID,
		Created: e.Created, Containers: len(e.Containers), ContainersDetail: []adminapi.ContainerSummary{}}
	st, at, ok := c.lastKnown(e)
	if !ok {
		return s
	}
	s.Phase = pod.Phase(st)
	if !at.IsZero() {
		s.StatusTime = &at
	}
	if len(st.Containers) > 0 || s.Containers == 0 {
		s.Containers = len(st.Containers)
	}
	for _, cs := range st.InitContainers {
		s.ContainersDetail = append(s.ContainersDetail, containerSummary(cs, true))
	}
	for _, cs := range st.Containers {
		s.ContainersDetail = append(s.ContainersDetail, containerSummary(cs, false))
		if cs.Ready {
			s.Ready++
		}
		s.Restarts += int(cs.RestartCount)
	}
	return s
}

func containerSummary(cs v1.ContainerStatus, init bool) adminapi.ContainerSummary {
	out := adminapi.ContainerSummary{Name: cs.Name, Init: init, Ready: cs.Ready, Restarts: cs.RestartCount, State: "waiting"}
	switch s := cs.State; {
	case s.Terminated != nil:
		code := s.Terminated.ExitCode
		out.State, out.Reason, out.Message, out.ExitCode = "terminated", s.Terminated.Reason, s.Terminated.Message, &code
	case s.Running != nil:
		out.State = "running"
	case s.Waiting != nil:
		out.Reason, out.Message = s.Waiting.Reason, s.Waiting.Message
	}
	return out
}
