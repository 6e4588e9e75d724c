package docker

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/docker/api/types/container"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// List returns every pod of this backend and dispatcher instance, found from the labels of its containers
// (in the view, listed again unless it is current) and from the pod directories, with its phase.
func (b *Backend) List(ctx context.Context) ([]backend.PodRecord, error) {
	groups, current := b.view.all(time.Now(), b.cfg.StatusMaxAge.D())
	if !current {
		if err := b.resync(ctx, time.Now()); err != nil {
			return nil, engineError("cannot list the backend's containers", err)
		}
		groups, _ = b.view.all(time.Now(), b.cfg.StatusMaxAge.D())
	}
	uids := map[string]bool{}
	for uid := range groups {
		uids[uid] = true
	}
	if entries, err := os.ReadDir(filepath.Join(b.dataDir, "pods")); err == nil {
		for _, e := range entries {
			if e.IsDir() && pod.ValidPodUID(e.Name()) == nil {
				uids[e.Name()] = true
			}
		}
	}
	out := make([]backend.PodRecord, 0, len(uids))
	for uid := range uids {
		pc := groups[uid]
		rec, _ := b.readRecord(uid)
		r := backend.PodRecord{UID: uid, Phase: v1.PodUnknown}
		if pc != nil && pc.pause != nil {
			r.RemoteID = pc.pause.ID
			r.Namespace = pc.pause.Labels[pod.LabelNamespace]
			r.Name = pc.pause.Labels[pod.LabelPodName]
			r.Created = time.Unix(pc.pause.Created, 0).UTC()
		} else if pc != nil {
			for _, runs := range pc.runs {
				r.Namespace, r.Name = runs[0].Labels[pod.LabelNamespace], runs[0].Labels[pod.LabelPodName]
			}
		}
		if rec != nil {
			if rec.RemoteID == "" && pc == nil {
				continue // a create in progress
			}
			r.Namespace, r.Name, r.Created = rec.Pod.Namespace, rec.Pod.Name, rec.Created
			if r.RemoteID == "" {
				r.RemoteID = rec.RemoteID
			}
			if pc == nil {
				pc = &podContainers{runs: map[string][]container.Summary{}}
			}
			r.Phase = pod.Phase(b.podStatus(ctx, rec.Pod, pc, b.readState(rec.Pod)))
		}
		out = append(out, r)
	}
	return out, nil
}
