package dispatcher

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Stopping the supervisor waits for the reconciliation each backend start began, so that the journal,
// closed right after (as the command does), is never written by it.
func TestStopWaitsForReconciliation(t *testing.T) {
	alpha := newMem("alpha")
	alpha.pods["uid-adopt"] = testPod("uid-adopt", "adopt") // a pod the journal lacks: adopting it writes
	alpha.ids["uid-adopt"] = "alpha-adopt"
	listing := make(chan struct{})
	var once sync.Once
	alpha.onList = func() {
		once.Do(func() { close(listing) })
		time.Sleep(300 * time.Millisecond) // a List slower than the shutdown that cancels it
	}
	obs := &recObserver{}
	e := startEnvWith(t, testConfig(t, tempDir(t), "alpha"), map[string]*memBackend{"alpha": alpha}, obs)
	<-listing
	e.sup.Stop()
	if n := obs.runs("alpha"); n != 1 {
		t.Fatalf("Stop returned with the reconciliation still running (%d finished)", n)
	}
	if err := e.journal.Close(); err != nil {
		t.Fatal(err)
	}
}

// A reconciliation that does not end within the bound does not hold the shutdown for ever, and once the
// journal is closed it does not touch it: whatever it does afterwards finds the journal closed.
func TestStopIsBoundedAndReconciliationLeavesClosedJournal(t *testing.T) {
	alpha := newMem("alpha")
	alpha.pods["uid-adopt"] = testPod("uid-adopt", "adopt")
	alpha.ids["uid-adopt"] = "alpha-adopt"
	listing, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	alpha.onList = func() {
		once.Do(func() { close(listing); <-release })
	}
	obs := &recObserver{}
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Timeouts.Shutdown = 200 * time.Millisecond
	e := startEnvWith(t, cfg, map[string]*memBackend{"alpha": alpha}, obs)
	<-listing
	start := time.Now()
	e.sup.Stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Stop took %s with a reconciliation stuck in List, want it bounded by timeouts.shutdown (%s)", d, cfg.Timeouts.Shutdown)
	}
	if err := e.journal.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitFor(t, func() bool { return obs.runs("alpha") == 1 })
	// It stopped because the shutdown cancelled it, not because it ran into the closed journal.
	if err := obs.lastErr("alpha"); !errors.Is(err, context.Canceled) {
		t.Fatalf("the reconciliation outliving the shutdown ended with %v, want it cancelled before touching the journal", err)
	}
}

// Once closed, the journal answers every operation with ErrJournalClosed and never reaches the file.
func TestJournalAfterClose(t *testing.T) {
	j, err := OpenJournal(tempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	_, _, gerr := j.Get("u")
	_, aerr := j.All()
	for what, err := range map[string]error{"Get": gerr, "All": aerr, "Put": j.Put(Entry{UID: "u"}), "Delete": j.Delete("u"),
		"Check": j.Check(), "Update": j.Update("u", func(*Entry) bool { return true })} {
		if !errors.Is(err, ErrJournalClosed) {
			t.Errorf("%s after Close: %v, want ErrJournalClosed", what, err)
		}
	}
}
