package pod

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// LockDir puts nothing in the directory it locks: a waiter that arrived while Delete removes the directory
// must not add an entry (a removal then fails with "directory not empty", and a lock on a new file is no lock
// at all). The waiter gets the lock once the holder lets go, finds the directory gone, and a later LockDir
// fails: the pod is gone.
func TestLockDirLocksTheDirectoryItself(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pod")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	unlock, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("LockDir left %d entries in the directory it locks", len(entries))
	}
	got := make(chan func(), 1)
	go func() {
		u, err := LockDir(dir)
		if err != nil {
			t.Error(err)
			u = func() {}
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("a second LockDir did not wait for the first")
	case <-time.After(200 * time.Millisecond):
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatalf("removing the locked directory, with a waiter: %v", err)
	}
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter never got the lock")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the removed directory is back: %v", err)
	}
	if _, err := LockDir(dir); err == nil {
		t.Fatal("LockDir of a removed pod directory succeeded")
	}
}
