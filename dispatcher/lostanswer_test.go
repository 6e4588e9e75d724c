package dispatcher

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// startLostAnswer starts the dispatcher over the real test backend process, persisting its pods in its data
// directory as a real backend does, with every launched process recorded.
func startLostAnswer(t *testing.T, tune func(*Config)) *labEnv {
	t.Helper()
	cfg := testConfig(t, tempDir(t), "mem")
	cfg.Backends[0].Binary = labtest.BuildBinary(t, "./shared/backend/internal/testbackend")
	cfg.Backends[0].Config = map[string]any{"persist": true}
	cfg.Supervision.BackoffInitial = 200 * time.Millisecond
	cfg.Supervision.BackoffMax = 200 * time.Millisecond
	if tune != nil {
		tune(&cfg)
	}
	return startOver(t, cfg, 30*time.Second)
}

// listed is the backend's List once it is up, by UID.
func (e *labEnv) listed() map[string]backend.PodRecord {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.sup.WaitUp(ctx); err != nil {
		e.t.Fatal(err)
	}
	b, _, err := e.sup.Backend("mem")
	if err != nil {
		e.t.Fatal(err)
	}
	recs, err := b.List(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]backend.PodRecord{}
	for _, r := range recs {
		out[r.UID] = r
	}
	return out
}

// A backend process that dies after recording a pod and before answering its Create: the dispatcher asks
// the relaunched process, which has the pod, and answers 200 with the pod journaled — not 503 for a pod
// that runs.
func TestCreateAnswerLostBackendRelaunched(t *testing.T) {
	e := startLostAnswer(t, nil)
	p := testPod("uid-lost", "lost")
	p.Annotations = map[string]string{"test.interlink.eu/exit-after-create": "once"}
	code, body := e.do("POST", "/create", createBody(p))
	if code != 200 {
		t.Fatalf("create whose backend died before answering: %d %s", code, body)
	}
	var cs interlink.CreateStruct
	if err := json.Unmarshal([]byte(body), &cs); err != nil || cs.PodUID != "uid-lost" || cs.PodJID == "" {
		t.Fatalf("create answer %s (%v)", body, err)
	}
	e.mu.Lock()
	launches := len(e.procs)
	e.mu.Unlock()
	if launches != 2 {
		t.Fatalf("%d backend launches; the backend was to die once during the create", launches)
	}
	ent, found, err := e.journal.Get("uid-lost")
	if err != nil || !found || ent.RemoteID != cs.PodJID || ent.Adopted {
		t.Fatalf("journal entry %+v (found %v, %v); want the answered remote id %s, not adopted", ent, found, err, cs.PodJID)
	}
	rec, ok := e.listed()["uid-lost"]
	if !ok || rec.RemoteID != cs.PodJID {
		t.Fatalf("the backend has %+v (listed %v); want the pod with remote id %s", rec, ok, cs.PodJID)
	}
}

// The same, with the backend not back within the create budget: the answer is an error, and the pod the
// dead process recorded does not survive: when the backend comes back, reconciliation deletes it instead of
// adopting it.
func TestCreateAnswerLostBackendNotBack(t *testing.T) {
	e := startLostAnswer(t, func(cfg *Config) {
		cfg.Timeouts.Create = time.Second
		cfg.Supervision.BackoffInitial = 3 * time.Second
		cfg.Supervision.BackoffMax = 3 * time.Second
	})
	p := testPod("uid-gone", "gone")
	p.Annotations = map[string]string{"test.interlink.eu/exit-after-create": "once"}
	code, body := e.do("POST", "/create", createBody(p))
	if code != 503 {
		t.Fatalf("create whose backend died and stayed down: %d %s", code, body)
	}
	if _, found, _ := e.journal.Get("uid-gone"); found {
		t.Fatal("a refused create was journaled")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, present := e.listed()["uid-gone"]
		_, journaled, _ := e.journal.Get("uid-gone")
		if journaled {
			t.Fatal("reconciliation adopted the pod of a refused create")
		}
		if !present {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pod of a refused create still runs 30 s after its backend came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
