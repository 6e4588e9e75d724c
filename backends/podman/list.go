package podman

import (
	"context"
	"sort"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// List returns every pod this instance has on Podman, found by the labels of its Podman pods and
// containers, plus the pods it accepted and has not made yet. The phase comes from the same status as
// Status reports.
func (b *Backend) List(ctx context.Context) ([]backend.PodRecord, error) {
	labels := map[string]string{pod.LabelInstance: b.env.Instance, pod.LabelBackend: b.env.Name}
	ctrs, err := b.api.ContainerList(ctx, labels)
	if err != nil {
		return nil, engineError(err)
	}
	pods := map[string]*v1.Pod{}
	remote := map[string]string{}
	created := map[string]metav1.Time{}
	for _, c := range ctrs {
		uid := c.Labels[pod.LabelPodUID]
		if uid == "" {
			continue
		}
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
	b.mu.Lock()
	for uid, r := range b.records {
		pods[uid] = r.Pod
		remote[uid] = r.PodName
		created[uid] = metav1.NewTime(r.Created)
	}
	b.mu.Unlock()

	uids := make([]string, 0, len(pods))
	for uid := range pods {
		uids = append(uids, uid)
	}
	sort.Strings(uids)
	asked := make([]*v1.Pod, len(uids))
	for i, uid := range uids {
		asked[i] = pods[uid]
	}
	statuses, err := b.Status(ctx, asked)
	if err != nil {
		return nil, err
	}
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
