package shim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// TerminationFile is the file in a container's state directory that the backend binds at the container's
// terminationMessagePath (see pod.TerminationMessage): the container writes its termination message there,
// whatever its user, and the backend reads it from the host after the run with ReadTerminationFile. The
// shim empties it when a run starts, so that a run restarted in place (Podman, SLURM) does not report the
// message of the run before.
const TerminationFile = "termination-log"

// maxTerminationMessageBytes is pod.MaxTerminationMessageBytes, the kubelet's bound (the shim stays free of
// that package's dependencies; a test holds the two equal).
const maxTerminationMessageBytes = 4 << 10

// PrepareTerminationFile makes dir's TerminationFile afresh, empty and writable by every user (the
// container's user may be any), and returns its path for the backend to bind. Whatever a run before left
// there (the container may have put a symbolic link in its place) is removed first, and the new file is
// made with O_EXCL, so nothing outside dir is ever opened or changed.
func PrepareTerminationFile(dir string) (string, error) {
	path := filepath.Join(dir, TerminationFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("cannot make the termination message file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o666)
	if err != nil {
		return "", fmt.Errorf("cannot make the termination message file: %w", err)
	}
	// The mode was cut by the umask.
	err = f.Chmod(0o666)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("cannot make the termination message file: %w", err)
	}
	return path, nil
}

// ReadTerminationFile returns the last pod.MaxTerminationMessageBytes of dir's TerminationFile (on the
// host, refusing what the container may have put in its place: see readStateFile); nothing, without an
// error, when there is none.
func ReadTerminationFile(dir string) ([]byte, error) {
	data, err := readStateFile(filepath.Join(dir, TerminationFile), maxTerminationMessageBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return data, err
}
