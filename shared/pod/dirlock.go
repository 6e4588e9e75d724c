package pod

import (
	"fmt"
	"os"
	"syscall"
)

// LockDir takes an exclusive lock (flock) on the pod directory dir, waiting for whoever holds it, and
// returns its release. A backend's Delete holds it while it removes the pod; anything the backend makes
// for a pod on its own afterwards (a restart, a re-created pause container) holds it too and first checks
// that the pod is still recorded, so that it never brings back a pod being or already deleted, whichever
// process of the backend deletes it. It fails, making nothing, when dir does not exist: the pod is gone.
//
// The lock is on the directory itself, not on a file in it: a lock file would have to be created, and one
// created by a waiter while Delete removes the directory (its predecessor already unlinked) both escapes the
// lock and leaves the directory not empty for the removal. A waiter that gets the lock on a directory removed
// meanwhile finds no record in it, and makes nothing.
func LockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot lock the pod directory %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
