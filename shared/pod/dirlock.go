package pod

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// DirLockFile is the file of a pod directory that LockDir locks.
const DirLockFile = ".lock"

// LockDir takes an exclusive lock (flock) on the pod directory dir, waiting for whoever holds it, and
// returns its release. A backend's Delete holds it while it removes the pod; anything the backend makes
// for a pod on its own afterwards (a restart, a re-created pause container) holds it too and first checks
// that the pod is still recorded, so that it never brings back a pod being or already deleted, whichever
// process of the backend deletes it. It fails, making nothing, when dir does not exist: the pod is gone.
func LockDir(dir string) (unlock func(), err error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	// O_CREATE makes the file, never the directory: a directory removed meanwhile stays removed.
	f, err := os.OpenFile(filepath.Join(dir, DirLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot lock the pod directory %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
