package slurm

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

var jobIDPattern = regexp.MustCompile(`^[0-9]+$`)

// submit runs `sbatch --parsable job.sh` in the pod's directory and returns the job id. Warnings sbatch
// prints on stderr are logged, not failures. A refusal is returned with SLURM's own message; when it is not
// clear whether a job was made (sbatch timed out, or printed no id), any job of the pod is cancelled so that
// none is left behind.
func (b *Backend) submit(ctx context.Context, uid, dir string) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, time.Duration(b.cfg.CommandTimeout))
	defer cancel()
	b.metrics.sbatchCalls.Inc()
	res, err := b.cfg.sbatch.run(sctx, dir, "--parsable", filepath.Join(dir, scriptFile))
	if err != nil {
		b.metrics.sbatchErrors.Inc()
		if sctx.Err() != nil {
			b.cancelByName(uid)
			return "", backend.Unavailable("sbatch did not answer within %s; the submission was cancelled, retry later", time.Duration(b.cfg.CommandTimeout))
		}
		if unreachable(err) {
			return "", backend.Errorf(backend.KindUnavailable, "SLURM cannot take jobs now: %w", err)
		}
		return "", backend.Errorf(backend.KindInvalid, "SLURM refused the pod's job: %w", err)
	}
	if warn := strings.TrimSpace(string(res.Stderr)); warn != "" {
		b.log.Warn("sbatch printed warnings", "pod_uid", uid, "stderr", warn)
	}
	// --parsable prints "<job id>" or "<job id>;<cluster>".
	line, _, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), "\n")
	id, _, _ := strings.Cut(strings.TrimSpace(line), ";")
	if !jobIDPattern.MatchString(id) {
		b.metrics.sbatchErrors.Inc()
		b.cancelByName(uid)
		return "", backend.Errorf(backend.KindInternal, "sbatch printed no job id (it printed %q); any job it made was cancelled", strings.TrimSpace(string(res.Stdout)))
	}
	return id, nil
}

// cancelByName cancels every job named after the pod's UID (the job name the backend gives), used when a
// submission's outcome is unknown. It uses its own deadline: it must run even when the caller gave up.
func (b *Backend) cancelByName(uid string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.cfg.CommandTimeout))
	defer cancel()
	b.metrics.scancelCalls.Inc()
	if _, err := b.cfg.scancel.run(ctx, "", "--name="+uid); err != nil {
		b.log.Error("could not cancel the jobs of a failed submission", "pod_uid", uid, "error", err)
	}
}

// cancelJob cancels one job by id, with its own deadline.
func (b *Backend) cancelJob(jobID string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.cfg.CommandTimeout))
	defer cancel()
	b.metrics.scancelCalls.Inc()
	_, err := b.cfg.scancel.run(ctx, "", append(args, jobID)...)
	if err != nil {
		msg := strings.ToLower(err.Error())
		if strings.Contains(msg, "invalid job id") || strings.Contains(msg, "already completing or completed") {
			return nil // already over or gone from the queue
		}
	}
	if err != nil {
		return fmt.Errorf("cannot cancel SLURM job %s: %w", jobID, err)
	}
	return nil
}
