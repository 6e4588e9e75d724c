package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// followPoll is how often a followed log looks for new lines.
const followPoll = 200 * time.Millisecond

// Logs writes one container's log with every option kubectl offers: Tail, Bytes, Timestamps, SinceSeconds,
// SinceTime and Follow. Previous has nothing to show: this backend never restarts a container.
func (b *Backend) Logs(ctx context.Context, req backend.LogRequest, w io.Writer) error {
	if err := pod.CheckUID(req.PodUID); err != nil {
		return err
	}
	if err := pod.CheckLogOptions(req.Opts); err != nil {
		return err
	}
	dir := b.podDir(req.PodUID)
	rec, err := readRecord(dir)
	if err != nil {
		return backend.NotFound("pod %s/%s (%s) is not known to backend %q", req.Namespace, req.PodName, req.PodUID, b.env.Name)
	}
	if !rec.hasContainer(req.ContainerName) {
		return backend.NotFound("pod %s/%s has no container %q", rec.Pod.Namespace, rec.Pod.Name, req.ContainerName)
	}
	if req.Opts.Previous {
		return backend.NotFound("container %q has no previous run: this backend never restarts a container", req.ContainerName)
	}
	o := req.Opts
	since := pod.LogSince(o, time.Now())
	lw := &limitWriter{w: w, left: int64(o.LimitBytes)}
	data, err := os.ReadFile(logPath(dir, req.ContainerName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return backend.Errorf(backend.KindInternal, "cannot read the log of container %q: %v", req.ContainerName, err)
	}
	// Only whole CRI lines are taken; a line being written is read on the next pass.
	done := bytes.LastIndexByte(data, '\n') + 1
	lines := parseCRI(data[:done], since)
	if o.Tail > 0 {
		lines = tail(lines, o.Tail)
	}
	if err := writeLines(lw, lines, o.Timestamps); err != nil || !o.Follow {
		return ignoreFull(err)
	}
	offset := int64(done)
	for {
		ended := b.containerEnded(dir, req.ContainerName)
		n, err := b.follow(dir, req.ContainerName, offset, since, lw, o.Timestamps)
		offset += n
		if err != nil {
			return ignoreFull(err)
		}
		if ended {
			return nil // read once more after the end was seen: nothing written before it is missed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followPoll):
		}
	}
}

// follow writes the whole lines after offset and returns how many bytes it consumed.
func (b *Backend) follow(dir, name string, offset int64, since time.Time, w io.Writer, ts bool) (int64, error) {
	f, err := os.Open(logPath(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<62))
	if err != nil {
		return 0, err
	}
	done := bytes.LastIndexByte(data, '\n') + 1
	return int64(done), writeLines(w, parseCRI(data[:done], since), ts)
}

// containerEnded tells whether the container has finished, or will never run.
func (b *Backend) containerEnded(dir, name string) bool {
	s, err := readState(dir, name)
	if err == nil && !s.FinishedAt.IsZero() {
		return true
	}
	_, alive := runnerPID(dir)
	return !alive
}

// logLine is one line of a container's output, put together from its CRI parts.
type logLine struct {
	at   time.Time
	text []byte // with its newline, unless the output ended without one
}

// parseCRI reads CRI log lines, joins partial ones and keeps those written at or after since.
func parseCRI(data []byte, since time.Time) []logLine {
	var out []logLine
	var cur *logLine
	for len(data) > 0 {
		var raw []byte
		raw, data, _ = bytes.Cut(data, []byte{'\n'})
		f := bytes.SplitN(raw, []byte{' '}, 4)
		if len(f) < 3 {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, string(f[0]))
		if err != nil {
			continue
		}
		var text []byte
		if len(f) == 4 {
			text = f[3]
		}
		if cur == nil {
			cur = &logLine{at: at}
		}
		cur.text = append(cur.text, text...)
		if string(f[2]) == "F" {
			cur.text = append(cur.text, '\n')
			if !cur.at.Before(since) {
				out = append(out, *cur)
			}
			cur = nil
		}
	}
	if cur != nil && !cur.at.Before(since) {
		out = append(out, *cur)
	}
	return out
}

func tail(lines []logLine, n int) []logLine {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

func writeLines(w io.Writer, lines []logLine, timestamps bool) error {
	for _, l := range lines {
		if timestamps {
			if _, err := io.WriteString(w, l.at.Format(time.RFC3339Nano)+" "); err != nil {
				return err
			}
		}
		if _, err := w.Write(l.text); err != nil {
			return err
		}
	}
	return nil
}

// errLimit ends a log whose byte limit (Bytes) is reached.
var errLimit = errors.New("the log's byte limit is reached")

func ignoreFull(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

// limitWriter passes at most left bytes (no limit when left is 0 at the start), then fails with errLimit.
type limitWriter struct {
	w       io.Writer
	left    int64
	limited bool
	started bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started, l.limited = true, l.left > 0
	}
	if !l.limited {
		return l.w.Write(p)
	}
	if l.left <= 0 {
		return 0, errLimit
	}
	cut := p
	if int64(len(cut)) > l.left {
		cut = cut[:l.left]
	}
	n, err := l.w.Write(cut)
	l.left -= int64(n)
	if err == nil && n < len(p) {
		err = errLimit
	}
	return n, err
}
