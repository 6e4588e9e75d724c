package libpod

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fuzzAnswer is what the fuzzed service answers every request with.
type fuzzAnswer struct {
	status int
	body   []byte
}

// FuzzDecoders serves arbitrary answers (status and body) as the Podman service over real HTTP and reads them
// with every decoder of the client: each call returns a value or an error, never panics, and an answer
// outside 2xx is always an *Error carrying its status.
func FuzzDecoders(f *testing.F) {
	frame := func(stream byte, payload string) []byte {
		hdr := make([]byte, 8)
		hdr[0] = stream
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(payload)))
		return append(hdr, payload...)
	}
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, `{"Id":"abc","State":{"Status":"exited","ExitCode":1,"StartedAt":"2026-01-01T00:00:00Z"},"Config":{"Labels":{"a":"b"}}}`},
		{200, `[{"Id":"abc","Names":["x"],"Labels":{"a":"b"},"State":"running","Pod":"p"}]`},
		{200, `{"host":{"cpus":4,"memTotal":8589934592},"version":{"Version":"4.3.1"}}`},
		{200, `{"stream":"pulling"}` + "\n" + `{"id":"sha256:1","images":["sha256:1"]}`},
		{200, `{"error":"manifest unknown"}`},
		{200, `{"Type":"container","Action":"died","Actor":{"ID":"a","Attributes":{"containerExitCode":"1"}},"timeNano":1}` + "\n"},
		{200, `137`},
		{200, string(frame(1, "2026-01-01T00:00:00.000000000Z hello\n")) + string(frame(2, "bad-time x"))},
		{200, string(frame(1, "x")[:6])},
		{500, `{"cause":"no such container","message":"no such container abc","response":500}`},
		{404, `{"message":"no such pod"}`},
		{409, ``},
		{200, `{`},
		{200, `null`},
	} {
		f.Add(s.status, []byte(s.body))
	}
	var mu sync.Mutex
	var current fuzzAnswer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		current := current
		mu.Unlock()
		w.Header().Set("Libpod-Api-Version", "4.3.1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(current.status)
		w.Write(current.body)
	}))
	f.Cleanup(srv.Close)
	c, err := New("tcp://"+strings.TrimPrefix(srv.URL, "http://"), "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 200 || status > 599 {
			status = 200 + (status%400+400)%400
		}
		// Every request of this input gets this answer.
		mu.Lock()
		current = fuzzAnswer{status: status, body: body}
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		check := func(what string, err error) {
			var e *Error
			if status >= 300 && status != 304 && err != nil && !errors.As(err, &e) && ctx.Err() == nil {
				t.Fatalf("%s of a %d answer: %v is not an *Error", what, status, err)
			}
			// A 2xx stream may carry its own failure (a pull's error line), which is an *Error of its own status.
			if errors.As(err, &e) && ((status >= 300 && e.Status != status) || e.Message == "") {
				t.Fatalf("%s of a %d answer %q: %+v", what, status, body, e)
			}
		}
		_, err := c.ContainerInspect(ctx, "abc")
		check("inspect", err)
		_, err = c.ContainerList(ctx, map[string]string{"a": "b"})
		check("list containers", err)
		_, err = c.PodList(ctx, map[string]string{"a": "b"})
		check("list pods", err)
		_, err = c.VolumeList(ctx, nil)
		check("list volumes", err)
		_, err = c.Info(ctx)
		check("info", err)
		_, err = c.ImageInspect(ctx, "busybox")
		check("inspect image", err)
		_, err = c.ImagePull(ctx, "busybox", PullMissing)
		check("pull", err)
		_, err = c.ContainerWait(ctx, "abc")
		check("wait", err)
		err = c.Events(ctx, EventOptions{}, func(Event) error { return nil })
		check("events", err)
		lr, err := c.ContainerLogs(ctx, "abc", LogOptions{})
		check("logs", err)
		if err == nil {
			for i := 0; i < 1000; i++ {
				if _, err := lr.Next(); err != nil {
					if !errors.Is(err, io.EOF) && err.Error() == "" {
						t.Fatal("an empty log error")
					}
					break
				}
			}
			lr.Close()
		}
	})
}
