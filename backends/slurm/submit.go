package slurm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

var jobIDPattern = regexp.MustCompile(`^[0-9]+$`)

// submit runs `sbatch --parsable job.sh` in the pod's directory and returns the job id. Warnings sbatch
// prints on stderr are logged, not failures. A refusal is returned with SLURM's own message; when it is not
// clear whether a job was made (sbatch timed out, or printed no id), any job of the pod is cancelled so that
// none is left behind.
func (b *Backend) submit(ctx context.Context, p *v1.Pod, dir string) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, time.Duration(b.cfg.CommandTimeout))
	defer cancel()
	b.metrics.sbatchCalls.Inc()
	b.metrics.engineCalls.WithLabelValues("sbatch").Inc()
	res, err := b.cfg.sbatch.run(sctx, dir, "--parsable", filepath.Join(dir, scriptFile))
	b.metrics.sbatchSeconds.Observe(res.Duration.Seconds())
	if err != nil {
		b.metrics.sbatchErrors.Inc()
		if sctx.Err() != nil {
			b.cancelByName(p)
			return "", backend.Unavailable("sbatch did not answer within %s; the submission was cancelled, retry later", time.Duration(b.cfg.CommandTimeout))
		}
		if unreachable(err) {
			return "", backend.Errorf(backend.KindUnavailable, "SLURM cannot take jobs now: %w", err)
		}
		return "", backend.Errorf(backend.KindInvalid, "SLURM refused the pod's job: %w", err)
	}
	if warn := strings.TrimSpace(string(res.Stderr)); warn != "" {
		b.podLog(p).Warn("sbatch printed warnings", "stderr", warn)
	}
	// --parsable prints "<job id>" or "<job id>;<cluster>".
	line, _, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), "\n")
	id, _, _ := strings.Cut(strings.TrimSpace(line), ";")
	if !jobIDPattern.MatchString(id) {
		b.metrics.sbatchErrors.Inc()
		b.cancelByName(p)
		return "", backend.Errorf(backend.KindInternal, "sbatch printed no job id (it printed %q); any job it made was cancelled", strings.TrimSpace(string(res.Stdout)))
	}
	b.queue.touch(id) // before the id is recorded: a status that reads it also waits for a newer squeue
	return id, nil
}

// cancelByName cancels every job named after pod p's UID (the job name the backend gives), used when a
// submission's outcome is unknown. It uses its own deadline: it must run even when the caller gave up.
func (b *Backend) cancelByName(p *v1.Pod) {
	uid := string(p.UID)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.cfg.CommandTimeout))
	defer cancel()
	b.metrics.scancelCalls.Inc()
	b.metrics.engineCalls.WithLabelValues("scancel").Inc()
	if _, err := b.cfg.scancel.run(ctx, "", "--name="+uid); err != nil {
		b.podLog(p).Error("could not cancel the jobs of a failed submission", "err", err)
	}
}

// cancelJob cancels one job by id, with its own deadline. A plain cancel (no args) shares its scancel run
// with the other deletes of the moment (cancelBatch).
func (b *Backend) cancelJob(jobID string, args ...string) error {
	var err error
	if len(args) == 0 {
		// Waiting for the run in flight and then its own: twice one command's bound.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Duration(b.cfg.CommandTimeout))
		err = b.cancels.cancel(ctx, jobID)
		cancel()
	} else {
		err = b.scancelJobs(context.Background(), append(args, jobID)...)
	}
	b.queue.touch(jobID) // the job's state changed, or is changing: squeue runs from before no longer say it
	if err != nil && !jobGone(err) {
		return fmt.Errorf("cannot cancel SLURM job %s: %w", jobID, err)
	}
	return nil
}

// scancelJobs runs scancel once with args (options, then job ids), bounded by the command timeout.
func (b *Backend) scancelJobs(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(b.cfg.CommandTimeout))
	defer cancel()
	b.metrics.scancelCalls.Inc()
	b.metrics.engineCalls.WithLabelValues("scancel").Inc()
	res, err := b.cfg.scancel.run(ctx, "", args...)
	b.metrics.scancelSeconds.Observe(res.Duration.Seconds())
	return err
}

// scancel exits with SLURM's error number truncated to a byte, and prints nothing for a job that is over
// unless it is asked to be verbose: these two mean the job is already gone.
const (
	scancelExitInvalidJobID = 2017 & 0xff // ESLURM_INVALID_JOB_ID: 225
	scancelExitAlreadyDone  = 2021 & 0xff // ESLURM_ALREADY_DONE: 229
)

// jobGone reports whether a failed scancel says the job is already over or unknown to SLURM, by its exit
// status or its message, which is what deleting it wanted.
func jobGone(err error) bool {
	var ce *commandError
	if !errors.As(err, &ce) || ce.notRun {
		return false
	}
	if ce.code == scancelExitInvalidJobID || ce.code == scancelExitAlreadyDone {
		return true
	}
	msg := strings.ToLower(ce.msg)
	return strings.Contains(msg, "invalid job id") || strings.Contains(msg, "already completing or completed")
}
