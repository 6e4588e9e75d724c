package slurm

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// Delete implements backend.Backend. A running job is signalled with SIGTERM (scancel --signal=TERM --full,
// which reaches the job script and every process of the job; the script stops its containers within the
// grace period), given the grace period to end, then cancelled outright; a pending job is cancelled at once.
// The pod's directory is taken away last (discardDir). Deleting an unknown pod succeeds.
func (b *Backend) Delete(ctx context.Context, req backend.DeleteRequest) error {
	if req.Pod == nil {
		return backend.Invalid("the delete request has no pod")
	}
	uid := string(req.Pod.UID)
	if uid == "" {
		return nil // nothing names a pod: no directory can exist for it
	}
	if err := pod.CheckUID(uid); err != nil {
		return err
	}
	unlock := b.locks.Lock(uid)
	defer unlock()
	dir := b.podDir(uid)
	rec, err := readRecord(dir)
	if err != nil {
		if !notExist(err) {
			b.cancelByName(req.Pod) // a damaged record may have named a job
		}
		// No record: prepare stopped before it, so sbatch never ran for this directory.
		return b.discardDir(dir)
	}
	if rec.JobID != "" {
		if err := b.stopJob(ctx, rec, dir, req.GracePeriod); err != nil {
			return err
		}
	} else {
		b.cancelByName(req.Pod) // a submission cut short may have made a job whose id was never recorded
	}
	if err := b.discardDir(dir); err != nil {
		return err
	}
	b.log.Info("pod deleted", "pod_uid", uid, "namespace", rec.Namespace, "name", rec.Name, "job_id", rec.JobID)
	return nil
}

// stopJob ends the pod's job, gracefully when it runs.
func (b *Backend) stopJob(ctx context.Context, rec *podRecord, dir string, grace time.Duration) error {
	if _, err := os.Stat(filepath.Join(dir, jobStartedFile)); errors.Is(err, fs.ErrNotExist) {
		// The job never began (the script's first act is job.started): nothing of the pod runs that could
		// stop gracefully, so it is cancelled without asking squeue. Should it start meanwhile, SLURM ends it
		// with SIGTERM and KillWait, which the script turns into its containers' graceful stop.
		if err := b.cancelJob(rec.JobID); err != nil {
			return slurmError(err, "cannot cancel job %s of the pod", rec.JobID)
		}
		return nil
	}
	jobs, err := b.queueJobs(ctx, rec.JobID)
	if err != nil {
		return slurmError(err, "cannot ask SLURM about job %s of the pod", rec.JobID)
	}
	v := b.viewJob(rec, dir, jobs, nil)
	if _, listed := jobs[rec.JobID]; !listed || v.Class == jobOver {
		return nil
	}
	if v.Class == jobActive {
		// The shims kill what outlives this stop's grace period, which may be shorter than the pod's.
		if err := shim.WriteStopGrace(filepath.Join(dir, shimDir), grace); err != nil {
			b.log.Warn("the shims stop with the pod's grace period", "job_id", rec.JobID, "err", err)
		}
		if err := b.cancelJob(rec.JobID, "--signal=TERM", "--full"); err != nil {
			return slurmError(err, "cannot stop job %s of the pod", rec.JobID)
		}
		deadline := time.Now().Add(max(grace, 0) + 5*time.Second)
		lastCheck := time.Now()
		for time.Now().Before(deadline) {
			if _, err := os.Stat(filepath.Join(dir, jobFinishedFile)); err == nil {
				break
			}
			if time.Since(lastCheck) >= 2*time.Second {
				lastCheck = time.Now()
				if jobs, err := b.queueJobs(ctx, rec.JobID); err == nil && b.viewJob(rec, dir, jobs, nil).Class == jobOver {
					break
				}
			}
			select {
			case <-ctx.Done():
				deadline = time.Now() // still cancel below: the pod is going away
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	// Whatever is left of the job (or a pending job) is cancelled; SLURM kills what ignores SIGTERM.
	if err := b.cancelJob(rec.JobID); err != nil {
		return slurmError(err, "cannot cancel job %s of the pod", rec.JobID)
	}
	return nil
}

func (b *Backend) removeDir(dir string) error {
	err := pod.RemoveDir(dir)
	if err != nil {
		// A process of the ending job may still write into it: try once more.
		time.Sleep(500 * time.Millisecond)
		err = pod.RemoveDir(dir)
	}
	if err != nil {
		return backend.Errorf(backend.KindInternal, "cannot remove the pod's directory %s: %w", dir, err)
	}
	return nil
}
