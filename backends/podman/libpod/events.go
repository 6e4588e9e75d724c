package libpod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// Event is one engine event.
type Event struct {
	Type   string `json:"Type"`   // container, pod, image, volume...
	Action string `json:"Action"` // create, start, died, restart, remove...
	Actor  struct {
		ID         string            `json:"ID"`
		Attributes map[string]string `json:"Attributes"` // labels, name, image, containerExitCode
	} `json:"Actor"`
	TimeNano int64 `json:"timeNano"`
}

// Time returns when the event happened.
func (e Event) Time() time.Time { return time.Unix(0, e.TimeNano) }

// ExitCode returns the exit code a died event carries.
func (e Event) ExitCode() (int32, bool) {
	v, ok := e.Actor.Attributes["containerExitCode"]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return int32(n), err == nil
}

// EventOptions select events. Filters are libpod event filters, e.g. {"container": [id], "event": ["died"],
// "label": ["k=v"]}.
type EventOptions struct {
	Filters map[string][]string
	Since   time.Time
	Until   time.Time
	Stream  bool // keep streaming new events until ctx ends
	// Connected, when set, is called once the service has answered, before the first event is read.
	Connected func()
}

// Events calls fn for each event, in order; with Stream it goes on until ctx ends or fn returns an error.
func (c *Client) Events(ctx context.Context, opt EventOptions, fn func(Event) error) error {
	q := url.Values{"stream": {strconv.FormatBool(opt.Stream)}}
	if len(opt.Filters) > 0 {
		b, _ := json.Marshal(opt.Filters)
		q.Set("filters", string(b))
	}
	if !opt.Since.IsZero() {
		q.Set("since", opt.Since.UTC().Format(time.RFC3339Nano))
	}
	if !opt.Until.IsZero() {
		q.Set("until", opt.Until.UTC().Format(time.RFC3339Nano))
	}
	resp, err := c.do(ctx, c.stream, "read events", "GET", "/events", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if opt.Connected != nil {
		opt.Connected()
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var e Event
		if err := dec.Decode(&e); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("podman events: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
