// Package shimtest builds the shim binary for tests of the backends and of the shim itself.
package shimtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// RaceEnv, set to "true", makes Build compile the shim with the race detector, for the shim's own tests on
// the host.
const RaceEnv = "INTERLINK_SHIM_TEST_RACE"

var (
	once     sync.Once
	path     string
	buildErr error
)

// Build compiles cmd/interlink-shim as a static binary once per test process and returns its path. The
// binary goes to one place per checkout under the temporary directory (mode 0755, so that a container of any user
// can run it bind-mounted), replaced by a rename, so that test processes running at once never see half a
// file and a container still holding the old one keeps it.
func Build(t testing.TB) string {
	t.Helper()
	once.Do(func() { path, buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return path
}

func build() (string, error) {
	// One directory per checkout: two checkouts testing at once (worktrees of different branches) must
	// never run each other's shim.
	sum := sha256.Sum256([]byte(labtest.RepoRoot()))
	dir := filepath.Join(os.TempDir(), "interlink-shim-test-"+hex.EncodeToString(sum[:4]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot make a directory for the shim binary: %w", err)
	}
	os.Chmod(dir, 0o755)
	tmp, err := os.CreateTemp(dir, ".build-*")
	if err != nil {
		return "", fmt.Errorf("cannot make a file for the shim binary: %w", err)
	}
	tmp.Close()
	name, args, cgo := "interlink-shim", []string{"build", "-trimpath", "-ldflags=-s -w", "-o", tmp.Name()}, "CGO_ENABLED=0"
	if os.Getenv(RaceEnv) == "true" {
		// The race detector needs cgo, so this binary is dynamic: fine on the host, not in any image.
		name, args, cgo = "interlink-shim-race", append(args, "-race"), "CGO_ENABLED=1"
	}
	cmd := exec.Command("go", append(args, "./cmd/interlink-shim")...)
	cmd.Dir = labtest.RepoRoot()
	cmd.Env = append(os.Environ(), cgo)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("cannot build the shim: %v\n%s", err, out)
	}
	final := filepath.Join(dir, name)
	err = os.Chmod(tmp.Name(), 0o755)
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("cannot put the shim binary in place: %w", err)
	}
	return final, nil
}
