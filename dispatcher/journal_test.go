package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// A journal another opener holds is refused with the sentence that says so, not bbolt's bare timeout: the
// lock error is recognised (bbolt's errors package) after the wait given.
func TestJournalLockedIsRefused(t *testing.T) {
	dir := tempDir(t)
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	_, err = OpenJournalTimeout(dir, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "is locked by another process") {
		t.Fatalf("second open = %v, want the journal refused as locked by another process", err)
	}
}

func TestJournalSurvivesReopen(t *testing.T) {
	dir := tempDir(t)
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 5, 1, 2, 3, 4, 0, time.UTC)
	if err := j.Put(Entry{UID: "u1", Backend: "docker", RemoteID: "c1", Namespace: "ns", Name: "p1", Created: created}); err != nil {
		t.Fatal(err)
	}
	j.Put(Entry{UID: "u2", Backend: "slurm", RemoteID: "42"})
	st := interlink.PodStatus{PodUID: "u1", Containers: []v1.ContainerStatus{{Name: "c", State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}}}
	if written, err := j.SetStatuses(map[string]interlink.PodStatus{"u1": st, "unknown": st}, time.Now()); err != nil || len(written) != 1 || !written["u1"] {
		t.Fatalf("SetStatuses recorded %v (%v), want u1 alone", written, err)
	}
	j.Delete("u2")
	j.Close()

	j, err = OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	all, err := j.All()
	if err != nil || len(all) != 1 {
		t.Fatalf("after reopen: %+v %v", all, err)
	}
	e := all[0]
	if e.UID != "u1" || e.Backend != "docker" || e.RemoteID != "c1" || e.Namespace != "ns" || e.Name != "p1" || !e.Created.Equal(created) ||
		e.LastStatus == nil || e.LastStatus.Containers[0].State.Running == nil {
		t.Fatalf("entry after reopen: %+v", e)
	}
	// A second dispatcher on the same data directory is refused instead of corrupting the journal.
	if _, err := OpenJournalTimeout(dir, 100*time.Millisecond); err == nil {
		t.Fatal("a second open of a journal in use succeeded")
	}
}

// TestJournalConcurrentWritesShareAndKeepTheLaterStatus checks the journal's batched writes: many at once
// all land, HeadsOf reads entries without their status, and a status known earlier never replaces one known
// later (two remembers of one pod run at once).
func TestJournalConcurrentWritesShareAndKeepTheLaterStatus(t *testing.T) {
	j, err := OpenJournal(tempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := j.Put(Entry{UID: fmt.Sprintf("u%d", i), Backend: "docker"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if all, err := j.Heads(); err != nil || len(all) != 50 {
		t.Fatalf("%d entries after 50 concurrent puts (%v)", len(all), err)
	}
	running := interlink.PodStatus{PodUID: "u1", Containers: []v1.ContainerStatus{{Name: "c", State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}}}
	waiting := interlink.PodStatus{PodUID: "u1", Containers: []v1.ContainerStatus{{Name: "c", State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{}}}}}
	later := time.Now()
	if _, err := j.SetStatuses(map[string]interlink.PodStatus{"u1": running}, later); err != nil {
		t.Fatal(err)
	}
	if written, err := j.SetStatuses(map[string]interlink.PodStatus{"u1": waiting}, later.Add(-time.Second)); err != nil || !written["u1"] {
		t.Fatalf("SetStatuses of an older status: %v, %v; want u1 reported as journaled", written, err)
	}
	e, found, err := j.Get("u1")
	if err != nil || !found || e.LastStatus == nil || e.LastStatus.Containers[0].State.Running == nil || !e.StatusTime.Equal(later.UTC()) {
		t.Fatalf("entry after an older status = %+v, %v, %v; want the later, running one", e, found, err)
	}
	h := j.HeadsOf([]string{"u1"})[0]
	if h.Err != nil || !h.Found || h.Entry.LastStatus != nil || h.Entry.Backend != "docker" || !h.Entry.StatusTime.Equal(later.UTC()) {
		t.Fatalf("HeadsOf(u1) = %+v; want the entry without its status", h)
	}
	hs := j.HeadsOf([]string{"u2", "nope", "u1"})
	if len(hs) != 3 || !hs[0].Found || hs[0].Entry.UID != "u2" || hs[1].Found || !hs[2].Found ||
		hs[2].Entry.LastStatus != nil || hs[0].Err != nil || hs[2].Err != nil {
		t.Fatalf("HeadsOf(u2, nope, u1) = %+v; want u2 and u1 found, in order, without statuses", hs)
	}
}

// A dispatcher restarted on the same data directory routes by the journal, answers create retries from
// it, and answers last known statuses of a backend that is down.
func TestDispatcherRestartKeepsJournal(t *testing.T) {
	dir := tempDir(t)
	alpha, beta := newMem("alpha"), newMem("beta")
	mems := map[string]*memBackend{"alpha": alpha, "beta": beta}
	e1 := startEnv(t, testConfig(t, dir, "alpha", "beta"), mems)
	p := testPod("uid-p", "p")
	p.Annotations = map[string]string{DefaultRoutingAnnotation: "beta"}
	q := testPod("uid-q", "q")
	_, pb := e1.do("POST", "/create", createBody(p))
	_, qb := e1.do("POST", "/create", createBody(q))
	if code, _ := e1.do("GET", "/status", []*v1.Pod{p, q}); code != 200 {
		t.Fatal("status failed")
	}
	e1.close()

	e2 := startEnv(t, testConfig(t, dir, "alpha", "beta"), mems)
	// A create retry is answered from the journal: same PodJID, nothing started twice.
	_, qb2 := e2.do("POST", "/create", createBody(q))
	if decodeCreateAnswer(t, qb).PodJID != decodeCreateAnswer(t, qb2).PodJID || alpha.creates != 1 {
		t.Fatalf("create retry after restart: %s vs %s, %d creates", qb, qb2, alpha.creates)
	}
	// The pod lost its annotation: the journal still routes it to beta.
	p.Annotations = nil
	_, body := e2.do("GET", "/status", []*v1.Pod{p})
	var st []interlink.PodStatus
	json.Unmarshal([]byte(body), &st)
	if len(st) != 1 || st[0].JobID != decodeCreateAnswer(t, pb).PodJID || st[0].Containers[0].State.Running == nil {
		t.Fatalf("status after restart: %s", body)
	}
	e2.close()

	// Restarted again, with beta down from the start: p gets the status recorded in the journal.
	beta.kill()
	e3 := startEnvPartial(t, testConfig(t, dir, "alpha", "beta"), mems, "alpha")
	_, body = e3.do("GET", "/status", []*v1.Pod{p})
	st = nil
	json.Unmarshal([]byte(body), &st)
	if len(st) != 1 || st[0].Containers[0].State.Running == nil {
		t.Fatalf("last known status after restart with the backend down: %s", body)
	}
	// And its delete is refused with 503, keeping the entry, since the pod still runs there.
	if code, msg := e3.do("DELETE", "/delete", p); code != 503 {
		t.Fatalf("delete on a down backend: %d %s", code, msg)
	}
	if _, found, _ := e3.journal.Get("uid-p"); !found {
		t.Fatal("a refused delete removed the journal entry")
	}
}

func TestReconcileAdoptsAndMarksMissing(t *testing.T) {
	dir := tempDir(t)
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.Put(Entry{UID: "uid-gone", Backend: "alpha", RemoteID: "x", Created: time.Now().Add(-time.Hour)})
	j.Put(Entry{UID: "uid-other", Backend: "beta", RemoteID: "y", Created: time.Now().Add(-time.Hour)})
	j.Close()
	alpha := newMem("alpha")
	alpha.pods["uid-orphan"] = testPod("uid-orphan", "orphan")
	alpha.ids["uid-orphan"] = "alpha-orphan"
	beta := newMem("beta")
	beta.pods["uid-other"] = testPod("uid-other", "other")
	beta.ids["uid-other"] = "y"
	obs := &recObserver{}
	e := startEnvWith(t, testConfig(t, dir, "alpha", "beta"), map[string]*memBackend{"alpha": alpha, "beta": beta}, obs)
	waitFor(t, func() bool { return obs.runs("alpha") == 1 && obs.runs("beta") == 1 })
	waitFor(t, func() bool {
		o, found, _ := e.journal.Get("uid-orphan")
		g, _, _ := e.journal.Get("uid-gone")
		return found && o.Adopted && o.RemoteID == "alpha-orphan" && !g.MissingSince.IsZero()
	})
	if o, _, _ := e.journal.Get("uid-other"); !o.MissingSince.IsZero() {
		t.Fatal("reconciling alpha marked a pod of beta missing")
	}
	// The adopted pod is routed to alpha by the journal, whatever its annotations say.
	orphan := testPod("uid-orphan", "orphan")
	orphan.Annotations = map[string]string{DefaultRoutingAnnotation: "beta"}
	_, body := e.do("POST", "/status", []*v1.Pod{orphan})
	var st []interlink.PodStatus
	json.Unmarshal([]byte(body), &st)
	if len(st) != 1 || st[0].JobID != "alpha-orphan" || st[0].Containers[0].State.Running == nil {
		t.Fatalf("adopted pod status: %s", body)
	}
}

// A pod deleted while a reconciliation is under way (its backend listed it, then the delete removed it from
// the backend and the journal) is not adopted back into the journal: a deleted pod never comes back as an
// entry that answers NotFound for ever.
func TestReconcileDoesNotAdoptAPodDeletedMeanwhile(t *testing.T) {
	dir := tempDir(t)
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.Put(Entry{UID: "uid-del", Backend: "alpha", RemoteID: "alpha-del", Created: time.Now().Add(-time.Hour)})
	j.Close()
	alpha := newMem("alpha")
	alpha.pods["uid-del"] = testPod("uid-del", "del")
	alpha.ids["uid-del"] = "alpha-del"
	listed, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	alpha.onList = func() {
		once.Do(func() { close(listed); <-release })
	}
	obs := &recObserver{}
	e := startEnvWith(t, testConfig(t, dir, "alpha"), map[string]*memBackend{"alpha": alpha}, obs)
	<-listed
	if code, body := e.do("DELETE", "/delete", testPod("uid-del", "del")); code != 200 {
		t.Fatalf("delete during the reconciliation: %d %s", code, body)
	}
	close(release)
	waitFor(t, func() bool { return obs.runs("alpha") == 1 })
	if ent, found, _ := e.journal.Get("uid-del"); found {
		t.Fatalf("the pod deleted during the reconciliation is journaled again: %+v", ent)
	}
}

// A reconciliation that listed a pod before a failed create undid it (the relaunched backend's reconciliation
// overlaps a lost answer's confirmation) waits for the pod's lock and then must not adopt it: not when the undo
// removed it (a journal entry for nothing), not when the undo failed (a pod running that interLink was told
// failed; it is deleted instead).
func TestUndoneCreateIsNotAdopted(t *testing.T) {
	for _, undoFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("undo fails %v", undoFails), func(t *testing.T) {
			cfg := testConfig(t, tempDir(t), "alpha")
			mem := newMem("alpha")
			e := startEnv(t, cfg, map[string]*memBackend{"alpha": mem})
			ctx := context.Background()
			p := testPod("uid-undone", "undone", "main")
			data := createBody(p)
			if _, err := mem.Create(ctx, backend.CreateRequest{Pod: p}); err != nil {
				t.Fatal(err)
			}
			if undoFails {
				mem.mu.Lock()
				mem.deleteErr = backend.Unavailable("the engine is restarting")
				mem.mu.Unlock()
			}
			e.srv.core.undoCreate(mem, "alpha", &data, "a test")
			if undoFails {
				mem.mu.Lock()
				mem.deleteErr = nil
				mem.mu.Unlock()
			}
			adopt := reconcileWrite{adopt: true, Entry: Entry{UID: "uid-undone", Backend: "alpha", Namespace: p.Namespace, Name: p.Name, Adopted: true}}
			if err := e.srv.core.applyReconcile(ctx, mem, []reconcileWrite{adopt}); err != nil {
				t.Fatal(err)
			}
			if _, found, err := e.journal.Get("uid-undone"); err != nil || found {
				t.Fatalf("a pod whose create was answered with an error was adopted (found %v, %v)", found, err)
			}
			mem.mu.Lock()
			_, still := mem.pods["uid-undone"]
			mem.mu.Unlock()
			if still {
				t.Fatalf("the pod is still on the backend after the undo and the reconciliation")
			}
		})
	}
}
