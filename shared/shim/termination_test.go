package shim

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

func TestTerminationBoundIsTheKubelets(t *testing.T) {
	if maxTerminationMessageBytes != pod.MaxTerminationMessageBytes {
		t.Fatalf("the shim reads %d bytes of a termination message, pod.TerminationMessage %d", maxTerminationMessageBytes, pod.MaxTerminationMessageBytes)
	}
}

func TestTerminationFile(t *testing.T) {
	dir := t.TempDir()
	if got, err := ReadTerminationFile(dir); err != nil || got != nil {
		t.Fatalf("no file yet: %q, %v; want nothing", got, err)
	}
	old := syscall.Umask(0o077)
	path, err := PrepareTerminationFile(dir)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o666 || fi.Size() != 0 {
		t.Fatalf("prepared file: %v, %v; want empty, mode 0666 whatever the umask", fi, err)
	}
	long := strings.Repeat("x", 10000) + "DONE"
	if err := os.WriteFile(path, []byte(long), 0o666); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadTerminationFile(dir); err != nil || string(got) != long[len(long)-maxTerminationMessageBytes:] {
		t.Fatalf("read %d bytes ending %q, %v; want the last %d", len(got), lastOf(got), err, maxTerminationMessageBytes)
	}
	// A run starting again (prepare) finds it empty.
	if _, err := PrepareTerminationFile(dir); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadTerminationFile(dir); err != nil || len(got) != 0 {
		t.Fatalf("after a new prepare: %q, %v; want empty", got, err)
	}
}

func lastOf(b []byte) string { return string(b[max(0, len(b)-8):]) }

// The state directory is the container's to write: what it puts there must never make the backend read or
// change a file outside it, nor block.
func TestStateDirectoryPlantsAreNotFollowed(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, TerminationFile)
	if err := os.Symlink(secret, path); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadTerminationFile(dir); err == nil || strings.Contains(string(got), "host secret") {
		t.Errorf("a termination file linked to a host file: read %q, %v; want it refused", got, err)
	}
	for _, f := range []string{MessageFile, ReasonFile} {
		if err := os.Symlink(secret, filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := ReadState(dir); err == nil || strings.Contains(st.Message, "host secret") {
		t.Errorf("state files linked to a host file: %+v, %v; want them refused", st, err)
	}
	// Prepare replaces the link; the host file keeps its mode and content.
	if _, err := PrepareTerminationFile(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("after prepare: %v, %v; want a regular file", fi, err)
	}
	if fi, err := os.Stat(secret); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the host file's mode changed: %v, %v", fi, err)
	}
	if data, _ := os.ReadFile(secret); string(data) != "host secret" {
		t.Errorf("the host file changed: %q", data)
	}

	// A FIFO does not block the reader.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o666); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadTerminationFile(dir); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a FIFO termination file was read as a message")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reading a FIFO termination file blocked")
	}
}
