package libpod

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestListAsksAgainWhenAnObjectVanished: Podman fails a whole list query with HTTP 500 "no such volume" when a
// volume is removed while it lists (seen on the lab's Podman 4.3 with pods deleted in parallel); the client
// asks again instead of failing the caller's delete or status. Other errors are not retried.
func TestListAsksAgainWhenAnObjectVanished(t *testing.T) {
	var volumeCalls, podCalls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/volumes/json"):
			if volumeCalls.Add(1) <= 2 {
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte(`{"cause":"no such volume","message":"no volume with name k8s_x_mem found in database: no such volume","response":500}`))
				return
			}
			w.Write([]byte(`[{"Name":"v1","Labels":{"a":"b"}}]`))
		case strings.HasSuffix(r.URL.Path, "/pods/json"):
			podCalls.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"cause":"database is locked","message":"database is locked","response":500}`))
		}
	}))
	defer srv.Close()
	c, err := New("tcp://"+strings.TrimPrefix(srv.URL, "http://"), "")
	if err != nil {
		t.Fatal(err)
	}
	vols, err := c.VolumeList(context.Background(), map[string]string{"a": "b"})
	if err != nil || len(vols) != 1 || vols[0].Name != "v1" {
		t.Errorf("VolumeList = %+v, %v; want v1 after two vanished-object answers", vols, err)
	}
	if n := volumeCalls.Load(); n != 3 {
		t.Errorf("%d volume list queries, want 3", n)
	}
	if _, err := c.PodList(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("PodList = %v, want the engine's error", err)
	}
	if n := podCalls.Load(); n != 1 {
		t.Errorf("a list failing for another reason was asked %d times, want once", n)
	}
}
