package dispatcher

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// withDisabled is a dispatcher whose journal holds a pod of backend "beta", started with "beta" disabled
// (an operator turned it off after the pod was created), and a log the test reads.
func withDisabled(t *testing.T) (*testEnv, *labtest.Buffer) {
	t.Helper()
	dir := tempDir(t)
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Put(Entry{UID: "uid-off", Backend: "beta", RemoteID: "beta-1", Namespace: "default", Name: "off",
		Created: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	cfg := testConfig(t, dir, "alpha", "beta")
	off := false
	cfg.Backends[1].Enabled = &off
	var buf labtest.Buffer
	e := startEnvLogged(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")}, nil, slog.New(slog.NewTextHandler(&buf, nil)))
	return e, &buf
}

// A journaled pod whose backend was disabled since can be deleted: the dispatcher forgets it and says so
// once, naming the backend, rather than answering 422 for ever.
func TestDeleteOfPodOnDisabledBackend(t *testing.T) {
	e, logs := withDisabled(t)
	code, body := e.do(http.MethodPost, "/delete", testPod("uid-off", "off"))
	if code != http.StatusOK {
		t.Fatalf("delete answered %d %q, want 200", code, body)
	}
	if _, found, err := e.journal.Get("uid-off"); err != nil || found {
		t.Fatalf("the journal entry is still there (found %v, err %v)", found, err)
	}
	said := forgotten(logs.String())
	if len(said) != 1 || !strings.Contains(said[0], "backend=beta") || !strings.Contains(said[0], "disabled") {
		t.Fatalf("the log says %q, want one line naming backend beta as disabled:\n%s", said, logs)
	}
	// A second delete finds nothing to forget, and says nothing more about beta.
	if code, body := e.do(http.MethodPost, "/delete", testPod("uid-off", "off")); code != http.StatusOK {
		t.Fatalf("second delete answered %d %q, want 200", code, body)
	}
	if said := forgotten(logs.String()); len(said) != 1 {
		t.Fatalf("after a second delete the log says %q, want the first line only", said)
	}
}

// forgotten is the log lines that say a pod was forgotten.
func forgotten(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "forgotten") {
			out = append(out, l)
		}
	}
	return out
}

// The status of a journaled pod whose backend is disabled says so, terminated, as a NotFound one does,
// rather than waiting for a backend that will never answer.
func TestStatusOfPodOnDisabledBackend(t *testing.T) {
	e, _ := withDisabled(t)
	var got []interlink.PodStatus
	code, body := e.do(http.MethodPost, "/status", []any{testPod("uid-off", "off")})
	if code != http.StatusOK {
		t.Fatalf("status answered %d %q", code, body)
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Containers) != 1 {
		t.Fatalf("status answered %s", body)
	}
	term := got[0].Containers[0].State.Terminated
	if term == nil || term.Reason != "BackendDisabled" || term.ExitCode == 0 ||
		!strings.Contains(term.Message, `"beta"`) || !strings.Contains(term.Message, "disabled") {
		t.Fatalf("container state %+v, want terminated with reason BackendDisabled naming backend beta as disabled", got[0].Containers[0].State)
	}
	if pod.Phase(got[0]) != "Failed" {
		t.Fatalf("phase %s, want Failed", pod.Phase(got[0]))
	}
}

// Its log is not found (404), with the reason, rather than refused as an invalid request (422).
func TestLogsOfPodOnDisabledBackend(t *testing.T) {
	e, _ := withDisabled(t)
	code, body := e.do(http.MethodPost, "/getLogs", interlink.LogStruct{Namespace: "default", PodUID: "uid-off", PodName: "off", ContainerName: "main"})
	if code != http.StatusNotFound || !strings.Contains(body, "disabled") {
		t.Fatalf("logs answered %d %q, want 404 saying the backend is disabled", code, body)
	}
}

// A status answered for a pod deleted while the backend was answering is not kept as its last known
// status: the pod is gone, and a later status while the backend is down must not report it running.
func TestStatusRacingDeleteKeepsNothing(t *testing.T) {
	alpha := newMem("alpha")
	e := startEnv(t, testConfig(t, tempDir(t), "alpha"), map[string]*memBackend{"alpha": alpha})
	p := testPod("uid-race", "race")
	if code, body := e.do(http.MethodPost, "/create", createBody(p)); code != http.StatusOK {
		t.Fatalf("create answered %d %q", code, body)
	}
	// The backend has read the pod as running when the delete comes, and answers after it.
	var once sync.Once
	alpha.onStatus = func([]*v1.Pod) {
		once.Do(func() {
			if code, body := e.do(http.MethodPost, "/delete", p); code != http.StatusOK {
				t.Errorf("delete answered %d %q", code, body)
			}
		})
	}
	var got []interlink.PodStatus
	_, body := e.do(http.MethodPost, "/status", []any{p})
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got) != 1 || got[0].Containers[0].State.Running == nil {
		t.Fatalf("the racing status answered %s (%v), want the running pod the backend saw", body, err)
	}
	if _, found, _ := e.journal.Get("uid-race"); found {
		t.Fatal("the deleted pod is back in the journal")
	}
	// Its backend cannot answer now: the deleted pod has no last known status to fall back on.
	alpha.mu.Lock()
	alpha.onStatus, alpha.statusErr = nil, backend.Unavailable("the engine is gone")
	alpha.mu.Unlock()
	got = nil
	_, body = e.do(http.MethodPost, "/status", []any{p})
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got) != 1 {
		t.Fatalf("status answered %s (%v)", body, err)
	}
	if st := got[0].Containers[0].State; st.Running != nil || st.Waiting == nil || st.Waiting.Reason != "BackendUnavailable" {
		t.Fatalf("the deleted pod is answered %+v from memory, want waiting BackendUnavailable", st)
	}
}

// A malformed pod UID is one refusal on every operation: 400, naming metadata.uid, before any backend sees it.
func TestMalformedUIDIsOneRefusal(t *testing.T) {
	e := startEnv(t, testConfig(t, tempDir(t), "alpha"), map[string]*memBackend{"alpha": newMem("alpha")})
	for _, uid := range []string{"../escape", "with space", "-dash"} {
		p := testPod(uid, "bad")
		for _, c := range []struct {
			path string
			body any
		}{
			{"/create", createBody(p)},
			{"/status", []any{p}},
			{"/delete", p},
			{"/getLogs", interlink.LogStruct{Namespace: "default", PodUID: uid, PodName: "bad", ContainerName: "main"}},
		} {
			if code, body := e.do(http.MethodPost, c.path, c.body); code != http.StatusBadRequest || !strings.Contains(body, "metadata.uid") {
				t.Errorf("%s with UID %q answered %d %q, want 400 naming metadata.uid", c.path, uid, code, body)
			}
		}
	}
	if n := e.mems["alpha"].creates; n != 0 {
		t.Errorf("the backend saw %d creates", n)
	}
}
