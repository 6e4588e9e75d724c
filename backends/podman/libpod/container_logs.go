package libpod

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// LogOptions select a container's log lines. Since and Until are sent as unix times; Podman resolves them to
// the second.
type LogOptions struct {
	Follow bool
	Tail   int // last N lines; 0 means all
	Since  time.Time
	Until  time.Time
}

// LogLine is one line of a container's log, in the order the engine recorded it.
type LogLine struct {
	Stderr bool
	Time   time.Time // when the engine recorded the line (to the second, as the API reports it)
	Text   []byte    // the line, with its newline when it had one
}

// LogReader reads a container's log line by line.
type LogReader struct {
	body io.ReadCloser
	r    *bufio.Reader
	hdr  [8]byte
}

// ContainerLogs opens a container's log: stdout and stderr interleaved in the order they were written, each
// line with its time. With Follow the reader goes on until the container stops or ctx ends.
func (c *Client) ContainerLogs(ctx context.Context, nameOrID string, opt LogOptions) (*LogReader, error) {
	q := url.Values{"stdout": {"true"}, "stderr": {"true"}, "timestamps": {"true"}}
	if opt.Follow {
		q.Set("follow", "true")
	}
	if opt.Tail > 0 {
		q.Set("tail", strconv.Itoa(opt.Tail))
	}
	if !opt.Since.IsZero() {
		q.Set("since", strconv.FormatInt(opt.Since.Unix(), 10))
	}
	if !opt.Until.IsZero() {
		q.Set("until", strconv.FormatInt(opt.Until.Unix(), 10))
	}
	resp, err := c.do(ctx, c.stream, "read logs of container "+nameOrID, "GET", "/containers/"+url.PathEscape(nameOrID)+"/logs", q, nil)
	if err != nil {
		return nil, err
	}
	return &LogReader{body: resp.Body, r: bufio.NewReaderSize(resp.Body, 64<<10)}, nil
}

// Next returns the next line, or io.EOF at the end of the log.
func (l *LogReader) Next() (LogLine, error) {
	// Each line comes in a frame: one byte of stream (1 stdout, 2 stderr), three zero bytes, a big-endian
	// uint32 length, then the payload "<RFC3339 time> <text>".
	if _, err := io.ReadFull(l.r, l.hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		return LogLine{}, err
	}
	n := binary.BigEndian.Uint32(l.hdr[4:])
	if n > 16<<20 {
		return LogLine{}, fmt.Errorf("podman log stream: a frame of %d bytes is not a log line", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(l.r, payload); err != nil {
		return LogLine{}, fmt.Errorf("podman log stream cut in a frame: %w", err)
	}
	line := LogLine{Stderr: l.hdr[0] == 2, Text: payload}
	if i := bytes.IndexByte(payload, ' '); i > 0 {
		if t, err := time.Parse(time.RFC3339Nano, string(payload[:i])); err == nil {
			line.Time, line.Text = t, payload[i+1:]
		}
	}
	return line, nil
}

// Close ends the stream.
func (l *LogReader) Close() error { return l.body.Close() }
