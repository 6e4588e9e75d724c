package slurm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Logs implements backend.Backend. The job writes each container's output to containers/<name>/log as it is
// produced, one "<unix time> <text>" per line; every option works on those lines, and Follow reads the file
// from where it stopped until the container ends.
func (b *Backend) Logs(ctx context.Context, req backend.LogRequest, w io.Writer) error {
	o := req.Opts
	if err := pod.CheckLogOptions(o); err != nil {
		return err
	}
	if err := pod.CheckUID(req.PodUID); err != nil {
		return err
	}
	dir := b.podDir(req.PodUID)
	rec, err := readRecord(dir)
	if err != nil {
		return backend.NotFound("pod %s/%s (UID %s) is not known to this backend", req.Namespace, req.PodName, req.PodUID)
	}
	if !slices.Contains(rec.Containers, req.ContainerName) && !slices.Contains(rec.InitContainers, req.ContainerName) {
		return backend.NotFound("pod %s/%s has no container %q", rec.Namespace, rec.Name, req.ContainerName)
	}
	cdir := filepath.Join(dir, containersDir, req.ContainerName)
	name := "log"
	if o.Previous {
		name = "log.prev"
	}
	f, err := os.Open(filepath.Join(cdir, name))
	switch {
	case err != nil && o.Previous:
		return backend.NotFound("container %q of pod %s/%s has no previous run", req.ContainerName, rec.Namespace, rec.Name)
	case err != nil && !notExist(err):
		return backend.Errorf(backend.KindInternal, "cannot read the log of container %q: %w", req.ContainerName, err)
	}
	lw := &logWriter{w: w, timestamps: o.Timestamps, since: pod.LogSince(o, time.Now()), limit: int64(o.LimitBytes)}
	var offset int64
	if f != nil {
		offset, err = lw.copyExisting(f, o.Tail)
		f.Close()
		if err != nil || lw.full() {
			return ignoreLimit(err)
		}
	}
	if !o.Follow || o.Previous {
		return nil
	}
	return ignoreLimit(b.follow(ctx, rec, cdir, offset, lw))
}

// errLimit ends a copy when Bytes have been written.
var errLimit = errors.New("byte limit reached")

func ignoreLimit(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

// logWriter writes log lines with the request's options.
type logWriter struct {
	w          io.Writer
	timestamps bool
	since      time.Time
	limit      int64 // 0: none
	written    int64
}

func (l *logWriter) full() bool { return l.limit > 0 && l.written >= l.limit }

// line writes one stored line ("<unix time> <text>", without its newline) as the client asked; a line
// stored as "<unix time>~ <text>" was the output's last, written without a newline, and is given back so.
func (l *logWriter) line(raw []byte) error {
	ts, text, ok := bytes.Cut(raw, []byte{' '})
	unended := bytes.HasSuffix(ts, []byte{'~'})
	t, valid := unixTime(string(bytes.TrimSuffix(ts, []byte{'~'})))
	if !ok || !valid {
		// Not written by the job's stamper: pass it through as it is.
		text, t, unended = raw, time.Time{}, false
	}
	if !l.since.IsZero() && !t.IsZero() && t.Before(l.since) {
		return nil
	}
	var out []byte
	if l.timestamps {
		if t.IsZero() {
			t = time.Now()
		}
		out = append(out, t.UTC().Format(time.RFC3339Nano)...)
		out = append(out, ' ')
	}
	out = append(out, text...)
	if !unended {
		out = append(out, '\n')
	}
	if l.limit > 0 && l.written+int64(len(out)) > l.limit {
		out = out[:l.limit-l.written]
	}
	n, err := l.w.Write(out)
	l.written += int64(n)
	if err != nil {
		return err
	}
	if l.full() {
		return errLimit
	}
	return nil
}

// copyExisting writes the complete lines already in f (the last tail of them when tail > 0) and returns the
// offset after the last complete line.
func (l *logWriter) copyExisting(f *os.File, tail int) (int64, error) {
	r := bufio.NewReaderSize(f, 64<<10)
	var offset int64
	var ring [][]byte
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			break // a partial last line is read again when it is complete
		}
		if err != nil {
			return offset, err
		}
		offset += int64(len(line))
		line = line[:len(line)-1]
		if tail > 0 {
			ring = append(ring, line)
			if len(ring) > tail {
				ring = ring[1:]
			}
			continue
		}
		if err := l.line(line); err != nil {
			return offset, err
		}
	}
	for _, line := range ring {
		if err := l.line(line); err != nil {
			return offset, err
		}
	}
	return offset, nil
}

// follow writes new lines of the container's log as they come, until the container's run ends (its state
// is no longer running after it was seen, or its job is over) or ctx is cancelled.
func (b *Backend) follow(ctx context.Context, rec *podRecord, cdir string, offset int64, lw *logWriter) error {
	interval := time.Duration(b.cfg.FollowInterval)
	path := filepath.Join(cdir, "log")
	var lastQueueCheck time.Time
	// Only complete lines are consumed: the stamper writes a line at once, and a line caught half-written is
	// read again whole at the next poll.
	readNew := func() error {
		f, err := os.Open(path)
		if err != nil {
			return nil // not started yet
		}
		defer f.Close()
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return err
		}
		data, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				return nil
			}
			line := data[:i]
			offset += int64(i + 1)
			data = data[i+1:]
			if err := lw.line(line); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		if err := readNew(); err != nil {
			return err
		}
		s := readCtrState(cdir, "")
		ended := s.Kind == "terminated" || (s.Kind == "waiting" && s.Reason == "CrashLoopBackOff")
		if !ended && s.Kind != "running" && time.Since(lastQueueCheck) > 5*time.Second {
			// Not running per its files: the job may be over without having written so.
			lastQueueCheck = time.Now()
			if b.jobOver(ctx, rec) {
				ended = true
			}
		}
		if ended {
			return readNew()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// jobOver reports whether the pod's job has ended, from its files or from squeue.
func (b *Backend) jobOver(ctx context.Context, rec *podRecord) bool {
	dir := b.podDir(rec.UID)
	if _, err := os.Stat(filepath.Join(dir, jobFinishedFile)); err == nil {
		return true
	}
	if _, err := readJobState(dir); err == nil {
		return true
	}
	if rec.JobID == "" {
		return false
	}
	jobs, err := b.queueJobs(ctx, rec.JobID)
	if err != nil {
		return false
	}
	return b.viewJob(rec, dir, jobs, nil).Class == jobOver
}
