package slurm

import (
	"context"
	"os"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// List implements backend.Backend from the pod directories (each records its pod and job id) and one squeue
// run for the phases, so a restarted backend or dispatcher finds every pod again.
func (b *Backend) List(ctx context.Context) ([]backend.PodRecord, error) {
	entries, err := os.ReadDir(b.cfg.Root)
	if err != nil {
		return nil, backend.Errorf(backend.KindInternal, "cannot read the pod directory root %s: %w", b.cfg.Root, err)
	}
	var recs []*podRecord
	for _, e := range entries {
		if !e.IsDir() || pod.ValidPodUID(e.Name()) != nil {
			continue
		}
		rec, err := readRecord(b.podDir(e.Name()))
		if err != nil || rec.UID != e.Name() {
			continue // not a pod directory, or one whose submission never completed
		}
		recs = append(recs, rec)
	}
	out := make([]backend.PodRecord, 0, len(recs))
	if len(recs) == 0 {
		return out, nil
	}
	ids := make([]string, 0, len(recs))
	for _, rec := range recs {
		ids = append(ids, rec.JobID)
	}
	jobs, qerr := b.queueJobs(ctx, ids...)
	for _, rec := range recs {
		st := b.podStatus(rec.pod(), rec, jobs, qerr)
		phase := pod.Phase(st)
		if qerr != nil && phase == v1.PodPending {
			phase = v1.PodUnknown
		}
		out = append(out, backend.PodRecord{
			UID: rec.UID, Namespace: rec.Namespace, Name: rec.Name, RemoteID: rec.JobID,
			Phase: phase, Created: rec.Created,
		})
	}
	return out, nil
}

// pod rebuilds the part of the pod that status needs (its identity and container names) from the record.
func (r *podRecord) pod() *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(r.UID), Namespace: r.Namespace, Name: r.Name}}
	for _, n := range r.InitContainers {
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n})
	}
	for _, n := range r.Containers {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: n})
	}
	return p
}
