package kubernetes

import (
	"context"
	"sort"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// List returns every remote pod of this backend and instance, from the watch on its label selector (whose
// first list, at start, is what finds them again after a restart).
func (b *Backend) List(ctx context.Context) ([]backend.PodRecord, error) {
	var out []backend.PodRecord
	for _, ns := range b.namespaces() {
		for _, obj := range b.informers[ns].GetStore().List() {
			rp, ok := obj.(*v1.Pod)
			if !ok || rp.Annotations[annotationUID] == "" {
				continue
			}
			// The phase the virtual kubelet will give the local pod from its statuses: the remote phase
			// lags the container states (the remote kubelet's own sync), so an ended pod alone keeps it.
			phase := rp.Status.Phase
			if phase != v1.PodSucceeded && phase != v1.PodFailed {
				phase = pod.Phase(statusOf(rp, rp))
			}
			out = append(out, backend.PodRecord{UID: rp.Annotations[annotationUID],
				Namespace: rp.Annotations[annotationNamespace], Name: rp.Annotations[annotationName],
				RemoteID: rp.Namespace + "/" + rp.Name, Phase: phase, Created: rp.CreationTimestamp.UTC()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}
