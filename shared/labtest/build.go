package labtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

// Packages BuildBackend puts beside a backend, as `make build` lays out bin/: the shim every container runs
// under (the Docker and Podman backends refuse to start without it) and the pause binary of the Docker backend.
const (
	ShimPackage  = "./cmd/interlink-shim"
	PausePackage = "./cmd/pause"
)

var builds struct {
	mu   sync.Mutex
	done map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// BuildBinary builds the main package pkg, named relative to RepoRoot (e.g. "./cmd/backend-docker"), once per
// test process and returns the path of the binary, named after the package's last element. It is built as
// `make build` builds (CGO_ENABLED=0, -trimpath), so that it is static and runs inside any image too.
//
// Every binary goes to one directory per checkout under the temporary directory, replaced by a rename: test
// processes of several packages building at once never see half a file, a process still running the old
// binary keeps it, and nothing is left behind but one set of binaries.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	builds.mu.Lock()
	if builds.done == nil {
		builds.done = map[string]*build{}
	}
	b := builds.done[pkg]
	if b == nil {
		b = &build{}
		builds.done[pkg] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(pkg) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// BuildBackend builds the backend command pkg (e.g. "./cmd/backend-podman") with the static interlink-shim
// and the pause binary beside it, and returns the backend's path: the backend finds both by itself, as it
// does in bin/ after `make build`.
func BuildBackend(t testing.TB, pkg string) string {
	t.Helper()
	BuildBinary(t, ShimPackage)
	BuildBinary(t, PausePackage)
	return BuildBinary(t, pkg)
}

// binDir is the directory BuildBinary builds into, one per checkout so that two checkouts never swap each
// other's binaries.
func binDir() (string, error) {
	sum := sha256.Sum256([]byte(RepoRoot()))
	dir := filepath.Join(os.TempDir(), "interlink-dispatcher-test-bin-"+hex.EncodeToString(sum[:4]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot make a directory for the test binaries: %w", err)
	}
	// Containers of any user run binaries bind-mounted from here (the shim, pause).
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot make the test binaries' directory %s readable by all: %w", dir, err)
	}
	return dir, nil
}

func goBuild(pkg string) (string, error) {
	dir, err := binDir()
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".build-*")
	if err != nil {
		return "", fmt.Errorf("cannot make a file for the binary of %s: %w", pkg, err)
	}
	tmp.Close()
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp.Name(), pkg)
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("cannot build %s: %v\n%s", pkg, err, out)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("cannot make the binary of %s executable: %w", pkg, err)
	}
	bin := filepath.Join(dir, path.Base(pkg))
	if err := os.Rename(tmp.Name(), bin); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("cannot put the binary of %s in place: %w", pkg, err)
	}
	return bin, nil
}
