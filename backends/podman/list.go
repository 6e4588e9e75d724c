package podman

import (
	"context"
	"sort"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// List returns every pod this instance has on Podman, found by the labels of its containers in the live
// view (one list of the engine unless the view holds), plus the pods it accepted and has not made yet. The
// phase comes from the same status as Status reports, worked out without an engine call: a List must not
// queue behind the engine (after a restart, every container is new to the inspect cache, and Podman serialises
// inspects behind the container locks the resumed launches hold).
func (b *Backend) List(ctx context.Context) ([]backend.PodRecord, error) {
	views, err := b.view.all(ctx)
	if err != nil {
		return nil, engineError(err)
	}
	pods := map[string]*v1.Pod{}
	remote := map[string]string{}
	created := map[string]metav1.Time{}
	for uid, pv := range views {
		for _, c := range pv.ctrs {
			addListed(pods, remote, created, uid, c)
		}
	}
	b.mu.RLock()
	for uid, r := range b.records {
		pods[uid] = r.Pod
		remote[uid] = r.PodName
		created[uid] = metav1.NewTime(r.Created)
	}
	b.mu.RUnlock()

	uids := make([]string, 0, len(pods))
	for uid := range pods {
		uids = append(uids, uid)
	}
	sort.Strings(uids)
	asked := make([]*v1.Pod, len(uids))
	for i, uid := range uids {
		asked[i] = pods[uid]
	}
	statuses := make([]interlink.PodStatus, len(asked))
	b.statuses(ctx, asked, views, true, statuses)
	out := make([]backend.PodRecord, len(uids))
	for i, uid := range uids {
		p := pods[uid]
		phase := v1.PodUnknown
		if len(p.Spec.Containers) > 0 {
			phase = pod.Phase(statuses[i])
		}
		out[i] = backend.PodRecord{UID: uid, Namespace: p.Namespace, Name: p.Name, RemoteID: remote[uid], Phase: phase, Created: created[uid].Time}
	}
	return out, nil
}

// addListed adds what container c of pod uid says to the pods rebuilt from the engine's labels.
func addListed(pods map[string]*v1.Pod, remote map[string]string, created map[string]metav1.Time, uid string, c libpod.ListContainer) {
	p, ok := pods[uid]
	if !ok {
		// Rebuilt from labels for pods whose record is gone; replaced by the record below when there is one.
		p = &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), Namespace: c.Labels[pod.LabelNamespace], Name: c.Labels[pod.LabelPodName]}}
		pods[uid] = p
		remote[uid] = c.PodName
		created[uid] = metav1.NewTime(c.Created)
	}
	switch c.Labels[pod.LabelRole] {
	case pod.RoleInit:
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: c.Labels[pod.LabelContainer]})
	case pod.RoleContainer:
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: c.Labels[pod.LabelContainer]})
	}
}
