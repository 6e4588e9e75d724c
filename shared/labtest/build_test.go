package labtest

import (
	"os"
	"path/filepath"
	"testing"
)

// A binary is built once per test process, into the checkout's directory, executable by anyone; the shim
// goes beside a backend.
func TestBuildBinary(t *testing.T) {
	pause := BuildBinary(t, PausePackage)
	if again := BuildBinary(t, PausePackage); again != pause {
		t.Errorf("second build gave %s, first %s", again, pause)
	}
	fi, err := os.Stat(pause)
	if err != nil || fi.Mode().Perm() != 0o755 || filepath.Base(pause) != "pause" {
		t.Fatalf("pause binary %s: %v %v", pause, fi, err)
	}
	shim := BuildBinary(t, ShimPackage)
	if filepath.Dir(shim) != filepath.Dir(pause) || filepath.Base(shim) != "interlink-shim" {
		t.Errorf("shim at %s, not beside pause at %s", shim, pause)
	}
}
