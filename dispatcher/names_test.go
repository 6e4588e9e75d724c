package dispatcher

import (
	"strings"
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// TestBadNamesRefused: names and UIDs Kubernetes would refuse get a 400 with one safe line naming the field,
// on every route, and never reach a backend.
func TestBadNamesRefused(t *testing.T) {
	e := twoBackends(t)
	mem := e.mems["alpha"]
	huge := strings.Repeat("a", 1<<20)
	cases := []struct {
		what, field      string
		uid, ns, name, c string
	}{
		{"a NUL in the name", "metadata.name", "uid-n1", "default", "web\x00x", "main"},
		{"a 1 MiB name", "metadata.name", "uid-n2", "default", huge, "main"},
		{"a path as the name", "metadata.name", "uid-n3", "default", "../../../../etc/passwd", "main"},
		{"upper case in the name", "metadata.name", "uid-n4", "default", "Web", "main"},
		{"a NUL namespace", "metadata.namespace", "uid-n5", "\x00", "web", "main"},
		{"a dotted namespace", "metadata.namespace", "uid-n6", "a.b", "web", "main"},
		{"a bad container name", "spec.containers[0].name", "uid-n7", "default", "web", "Main_1"},
		{"a UID with a slash", "metadata.uid", "../uid", "default", "web", "main"},
		{"a UID with a NUL", "metadata.uid", "uid\x00", "default", "web", "main"},
		{"a 1 MiB UID", "metadata.uid", huge, "default", "web", "main"},
	}
	for _, c := range cases {
		p := testPod(c.uid, c.name, c.c)
		p.Namespace = c.ns
		code, body := e.do("POST", "/create", createBody(p))
		checkRefusal(t, "create with "+c.what, c.field, code, body)
		if c.field == "spec.containers[0].name" {
			continue // status, delete and logs carry no container names of the pod
		}
		code, body = e.do("POST", "/status", []any{p})
		checkRefusal(t, "status with "+c.what, c.field, code, body)
		code, body = e.do("POST", "/delete", p)
		checkRefusal(t, "delete with "+c.what, c.field, code, body)
		code, body = e.do("GET", "/getLogs", interlink.LogStruct{PodUID: c.uid, Namespace: c.ns, PodName: c.name, ContainerName: "main"})
		checkRefusal(t, "logs with "+c.what, c.field, code, body)
	}
	code, body := e.do("GET", "/getLogs", interlink.LogStruct{PodUID: "uid-ok", Namespace: "default", PodName: "web", ContainerName: "x\x00"})
	checkRefusal(t, "logs of a bad container name", "ContainerName", code, body)

	mem.mu.Lock()
	creates, deletes, statuses := mem.creates, len(mem.deletes), mem.statusCalls
	mem.mu.Unlock()
	if creates != 0 || deletes != 0 || statuses != 0 {
		t.Fatalf("refused requests reached the backend: %d creates, %d deletes, %d status calls", creates, deletes, statuses)
	}
	// Names Kubernetes accepts, UUID UIDs, and status/delete with the names left out still work.
	p := testPod("0d9f5f0c-6a8e-4c1e-9b5e-3c2f1a0b9d7e", "web-1.example", "main", "side-car")
	p.Namespace = "team-a"
	if code, body := e.do("POST", "/create", createBody(p)); code != 200 {
		t.Fatalf("a valid pod: %d %q", code, body)
	}
	bare := testPod(string(p.UID), "")
	bare.Namespace = ""
	if code, body := e.do("POST", "/status", []any{bare}); code != 200 {
		t.Fatalf("status by UID alone: %d %q", code, body)
	}
	if code, body := e.do("POST", "/delete", bare); code != 200 {
		t.Fatalf("delete by UID alone: %d %q", code, body)
	}
}

func checkRefusal(t *testing.T, what, field string, code int, body string) {
	t.Helper()
	switch {
	case code != 400:
		t.Errorf("%s: %d %.200q, want 400", what, code, body)
	case !strings.Contains(body, field):
		t.Errorf("%s: %.200q does not name %s", what, body, field)
	case len(body) > 2048 || strings.ContainsRune(body, 0) || strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n"):
		t.Errorf("%s: the answer is not one short safe line: %d bytes, %.200q", what, len(body), body)
	}
}
