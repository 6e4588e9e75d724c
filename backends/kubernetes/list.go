package kubernetes

import (
	"context"
	"sort"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// List returns every remote pod of this backend and instance, from the watch on its label selector (whose
// first list, at start, is what finds them again after a restart), and the pods this process created that
// the watch has not shown yet.
func (b *Backend) List(ctx context.Context) ([]backend.PodRecord, error) {
	// The unseen first: a pod leaves them only once the watch's cache holds it, so it is in one or the other.
	byUID := map[string]*v1.Pod{}
	for _, rp := range b.unseen() {
		byUID[rp.Annotations[annotationUID]] = rp
	}
	for _, ns := range b.namespaces() {
		for _, obj := range b.informers[ns].GetStore().List() {
			if rp, ok := obj.(*v1.Pod); ok && rp.Annotations[annotationUID] != "" {
				byUID[rp.Annotations[annotationUID]] = rp
			}
		}
	}
	out := make([]backend.PodRecord, 0, len(byUID))
	for uid, rp := range byUID {
		// The phase the virtual kubelet will give the local pod from its statuses: the remote phase lags the
		// container states (the remote kubelet's own sync), so an ended pod alone keeps it.
		phase := rp.Status.Phase
		if phase != v1.PodSucceeded && phase != v1.PodFailed {
			phase = pod.Phase(statusOf(rp, rp))
		}
		out = append(out, backend.PodRecord{UID: uid,
			Namespace: rp.Annotations[annotationNamespace], Name: rp.Annotations[annotationName],
			RemoteID: rp.Namespace + "/" + rp.Name, Phase: phase, Created: rp.CreationTimestamp.UTC()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}
