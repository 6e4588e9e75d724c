package podman

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Logs writes one container's log with every option of interLink's LogStruct. Podman keeps stdout and stderr
// in one file in the order they were written, and follows until the container exits.
func (b *Backend) Logs(ctx context.Context, req backend.LogRequest, w io.Writer) error {
	o := req.Opts
	if err := pod.CheckLogOptions(o); err != nil {
		return err
	}
	if err := pod.CheckUID(req.PodUID); err != nil {
		return err
	}
	// The pod's containers as the live view has them: no engine call while its entry is fresh.
	views, err := b.view.containers(ctx, []string{req.PodUID})
	if err != nil {
		return engineError(err)
	}
	ctr := byName(views[req.PodUID].ctrs)[req.ContainerName]
	if ctr == nil {
		if b.knownContainer(req.PodUID, req.ContainerName) {
			// Not made yet, or never to be made (its image failed, an init container failed first): an empty
			// log, as interLink's clients treat any error as fatal for a container the pod has.
			return nil
		}
		return backend.NotFound("container %q of pod %s/%s (uid %s) has no log: it does not exist on Podman (not created yet, failed before, or deleted)",
			req.ContainerName, req.Namespace, req.PodName, req.PodUID)
	}

	if ctr.StartedAt <= 0 && ctr.State != "running" {
		return nil // created, not started yet (or never to start): nothing written
	}
	since := pod.LogSince(o, time.Now())
	out := &logWriter{w: w, timestamps: o.Timestamps, limit: int64(o.LimitBytes)}
	if o.Previous {
		src, err := b.previousLines(ctx, ctr.ID)
		if err != nil {
			return err
		}
		defer src.Close()
		// The previous instance is over: it is never followed.
		_, err = copyLines(ctx, src, out, 0, since, o.Tail)
		return err
	}

	// The log file holds every run of a restarted container; Kubernetes shows only the current one.
	after, skip, err := b.currentRunStart(ctx, ctr)
	if err != nil {
		return err
	}
	if after.IsZero() && since.IsZero() && o.Tail == 0 {
		// The common case: the engine follows. (Not a tail: Podman 4.3's own tail joins a line written
		// without its newline to the line before, and drops it when it is the only one.)
		lr, err := b.api.ContainerLogs(ctx, ctr.ID, libpod.LogOptions{Follow: o.Follow})
		if err != nil {
			return engineError(err)
		}
		defer lr.Close()
		_, err = copyLines(ctx, lr, out, 0, time.Time{}, 0)
		return err
	}
	// The API filters by whole seconds and takes its tail before filtering, so the history is read,
	// filtered and tailed here, then followed from where it ended: the second stream skips the lines the
	// first read.
	from := after.Truncate(time.Second)
	if s := since.Truncate(time.Second); s.After(from) {
		from, skip = s, 0
	}
	lr, err := b.api.ContainerLogs(ctx, ctr.ID, libpod.LogOptions{Since: from})
	if err != nil {
		return engineError(err)
	}
	read, err := copyLines(ctx, lr, out, skip, since, o.Tail)
	lr.Close()
	if err != nil || !o.Follow || out.full() {
		return err
	}
	lr, err = b.api.ContainerLogs(ctx, ctr.ID, libpod.LogOptions{Since: from, Follow: true})
	if err != nil {
		return engineError(err)
	}
	defer lr.Close()
	_, err = copyLines(ctx, lr, out, read, time.Time{}, 0)
	return err
}

// knownContainer tells whether the pod uid, as recorded, has a container (init or not) named name.
func (b *Backend) knownContainer(uid, name string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	r, ok := b.records[uid]
	return ok && pod.FindContainer(r.Pod, name) != nil
}

// copyLines writes the lines of src to out after skipping its first skip lines, keeping those of the second
// of since or later (the API times lines to the second), and only the last tail ones when tail > 0. It
// returns how many lines it read from src, skipped ones included.
func copyLines(ctx context.Context, src lineSource, out *logWriter, skip int, since time.Time, tail int) (int, error) {
	since = since.Truncate(time.Second)
	var (
		read int
		last [][]byte
	)
	for !out.full() {
		l, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return read, nil // the client left
			}
			return read, engineError(err)
		}
		read++
		if read <= skip || (!since.IsZero() && l.Time.Before(since)) {
			continue
		}
		if tail > 0 {
			last = append(last, out.format(l))
			if len(last) > tail {
				last = last[1:]
			}
			continue
		}
		if err := out.write(out.format(l)); err != nil {
			return read, err
		}
	}
	for _, line := range last {
		if err := out.write(line); err != nil {
			return read, err
		}
	}
	return read, nil
}

// lineSource is a container log read line by line: the engine's API, or the log file of a previous run.
type lineSource interface {
	Next() (libpod.LogLine, error)
	Close() error
}

// currentRunStart returns when the container's current run began, for a container that has restarted (the
// end of its previous run, by the engine's died events; zero otherwise), and how many lines of that second,
// counted in the container's local log file when this process can read it, belong to earlier runs.
func (b *Backend) currentRunStart(ctx context.Context, ctr *libpod.ListContainer) (time.Time, int, error) {
	ins, err := b.api.ContainerInspect(ctx, ctr.ID)
	if err != nil {
		return time.Time{}, 0, engineError(err)
	}
	if ins.RestartCount == 0 {
		return time.Time{}, 0, nil
	}
	runs, err := b.runs(ctx, ctr.ID)
	if err != nil {
		return time.Time{}, 0, engineError(err)
	}
	idx := len(runs) - 1
	if !ins.State.Running {
		idx--
	}
	if idx < 0 {
		return time.Time{}, 0, nil
	}
	after := runs[idx].FinishedAt
	skip := 0
	if f, err := openLogFile(ins); err == nil {
		fl := &fileLines{f: f, r: bufio.NewReader(f), after: after.Truncate(time.Second).Add(-1), before: after}
		for {
			if _, err := fl.Next(); err != nil {
				break
			}
			skip++
		}
		fl.Close()
	}
	return after, skip, nil
}

func openLogFile(ins libpod.InspectContainer) (*os.File, error) {
	if ins.HostConfig.LogConfig.Type != "k8s-file" || ins.HostConfig.LogConfig.Path == "" {
		return nil, os.ErrNotExist
	}
	return os.Open(ins.HostConfig.LogConfig.Path)
}

// previousLines reads the lines of the container's previous run: those written after the run before it
// died and before it died itself, by the engine's died events (timed to the nanosecond). The API times log
// lines only to the second, and Podman restarts a failed container at once, so runs often share a second:
// the lines are read from the container's k8s-file log, whose times are exact, when this process can read
// it (the engine runs on this host); otherwise from the API by whole seconds, which may take in lines of the
// neighbouring runs.
func (b *Backend) previousLines(ctx context.Context, id string) (lineSource, error) {
	ins, err := b.api.ContainerInspect(ctx, id)
	if err != nil {
		return nil, engineError(err)
	}
	runs, err := b.runs(ctx, id)
	if err != nil {
		return nil, engineError(err)
	}
	idx := len(runs) - 1
	if !ins.State.Running {
		idx-- // the last died event is the current run's own end
	}
	if ins.RestartCount == 0 || idx < 0 {
		return nil, backend.NotFound("previous terminated container %q not found: it has not restarted", ins.Name)
	}
	var after time.Time
	if idx > 0 {
		after = runs[idx-1].FinishedAt
	}
	before := runs[idx].FinishedAt
	if f, err := openLogFile(ins); err == nil {
		return &fileLines{f: f, r: bufio.NewReader(f), after: after, before: before}, nil
	}
	lr, err := b.api.ContainerLogs(ctx, id, libpod.LogOptions{Since: after.Truncate(time.Second), Until: before.Truncate(time.Second).Add(time.Second)})
	if err != nil {
		return nil, engineError(err)
	}
	return lr, nil
}

// fileLines reads a k8s-file log ("<RFC3339Nano> <stream> <P|F> <text>" per line, P marking a partial line
// continued by the next), keeping the lines timed within (after, before].
type fileLines struct {
	f             *os.File
	r             *bufio.Reader
	after, before time.Time
	partial       []byte
}

func (l *fileLines) Next() (libpod.LogLine, error) {
	for {
		raw, err := l.r.ReadBytes('\n')
		if len(raw) == 0 && err != nil {
			return libpod.LogLine{}, err
		}
		raw = bytes.TrimSuffix(raw, []byte("\n"))
		fields := bytes.SplitN(raw, []byte(" "), 4)
		if len(fields) < 3 {
			continue
		}
		t, perr := time.Parse(time.RFC3339Nano, string(fields[0]))
		if perr != nil {
			continue
		}
		var text []byte
		if len(fields) == 4 {
			text = fields[3]
		}
		if string(fields[2]) == "P" {
			l.partial = append(l.partial, text...)
			continue
		}
		text = append(l.partial, text...)
		l.partial = nil
		if (!l.after.IsZero() && !t.After(l.after)) || t.After(l.before) {
			continue
		}
		return libpod.LogLine{Stderr: string(fields[1]) == "stderr", Time: t, Text: append(text, '\n')}, nil
	}
}

func (l *fileLines) Close() error { return l.f.Close() }

// logWriter formats lines and enforces the byte limit.
type logWriter struct {
	w          io.Writer
	timestamps bool
	limit      int64 // 0: none
	written    int64
}

func (l *logWriter) format(line libpod.LogLine) []byte {
	if !l.timestamps {
		return line.Text
	}
	return append([]byte(line.Time.UTC().Format(time.RFC3339Nano)+" "), line.Text...)
}

// write writes one line, cut at the byte limit.
func (l *logWriter) write(b []byte) error {
	if l.full() {
		return nil
	}
	if l.limit > 0 && int64(len(b)) > l.limit-l.written {
		b = b[:l.limit-l.written]
	}
	n, err := l.w.Write(b)
	l.written += int64(n)
	return wrapWrite(err)
}

// full reports whether the byte limit is reached.
func (l *logWriter) full() bool { return l.limit > 0 && l.written >= l.limit }

func wrapWrite(err error) error {
	if err != nil {
		return fmt.Errorf("writing the log to the client: %w", err)
	}
	return nil
}
