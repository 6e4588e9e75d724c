package subpath

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needRoot skips a test that mounts when not root; CI runs as root, so there it always runs.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("binding a subPath needs root (mount(2)); run the tests as root")
	}
}

// volume makes a volume directory and a backend directory beside it (outside the volume) for the pins,
// and unpins everything at the end so that t.TempDir's removal never descends through a pin.
func volume(t *testing.T) (vol, pins string) {
	t.Helper()
	base := t.TempDir()
	vol, pins = filepath.Join(base, "vol"), filepath.Join(base, "pins")
	if err := os.MkdirAll(vol, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := UnpinAll(base); err != nil {
			t.Errorf("UnpinAll: %v", err)
		}
	})
	return vol, pins
}

func TestPinDirectoryShowsItsContentAndSurvivesASwap(t *testing.T) {
	needRoot(t)
	vol, pins := volume(t)
	if err := os.MkdirAll(filepath.Join(vol, "sp"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "sp", "data"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(pins, "c", "0")
	if err := Pin(vol, "sp", target, 0o777); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(target, "data")); err != nil || string(got) != "inside" {
		t.Fatalf("pinned target shows %q, %v; want the subPath's file", got, err)
	}
	// The pod swaps the directory for a link to the host's root: the pinned mount still shows the original.
	if err := os.Rename(filepath.Join(vol, "sp"), filepath.Join(vol, "old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(vol, "sp")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(target, "data")); err != nil || string(got) != "inside" {
		t.Fatalf("after the swap the target shows %q, %v; want the original directory", got, err)
	}
	if _, err := os.Stat(filepath.Join(target, "etc")); err == nil {
		t.Fatal("after the swap the target shows the host's root")
	}
	// The next start re-resolves, and refuses.
	err := Pin(vol, "sp", target, 0o777)
	if !errors.Is(err, ErrEscapes) {
		t.Fatalf("re-pin after the swap: %v, want ErrEscapes", err)
	}
	if _, err := os.Stat(filepath.Join(target, "etc")); err == nil {
		t.Fatal("a refused re-pin left the host's root on the target")
	}
	if _, err := os.Stat(filepath.Join(target, "data")); err == nil {
		t.Fatal("a refused re-pin left the earlier pin in place")
	}
}

func TestPinRefusesLinksOutOfTheVolume(t *testing.T) {
	vol, pins := volume(t)
	for name, link := range map[string]string{"abs": "/", "rel": "../../../../../../../..", "etc": "/etc"} {
		if err := os.Symlink(link, filepath.Join(vol, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(vol, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../..", filepath.Join(vol, "d", "up")); err != nil {
		t.Fatal(err)
	}
	for _, sp := range []string{"abs", "rel", "etc", "abs/tmp", "d/up", "d/up/etc", "d/../.."} {
		err := Check(vol, sp)
		if !errors.Is(err, ErrEscapes) {
			t.Errorf("Check(%q) = %v, want ErrEscapes", sp, err)
		}
		if os.Geteuid() != 0 {
			continue
		}
		target := filepath.Join(pins, "x")
		err = Pin(vol, sp, target, 0o777)
		if !errors.Is(err, ErrEscapes) {
			t.Errorf("Pin(%q) = %v, want ErrEscapes", sp, err)
		}
		if _, err := os.Stat(filepath.Join(target, "etc")); err == nil {
			t.Errorf("Pin(%q) was refused but the target shows the host's root", sp)
		}
	}
}

func TestPinFollowsALinkThatStaysInside(t *testing.T) {
	needRoot(t)
	vol, pins := volume(t)
	if err := os.MkdirAll(filepath.Join(vol, "real", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "real", "deep", "f"), []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real/deep", filepath.Join(vol, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../real", filepath.Join(vol, "real", "deep", "back")); err != nil {
		t.Fatal(err)
	}
	for _, sp := range []string{"link", "real/deep/back/deep"} {
		target := filepath.Join(pins, "in")
		if err := Pin(vol, sp, target, 0o777); err != nil {
			t.Fatalf("Pin(%q): %v", sp, err)
		}
		if got, err := os.ReadFile(filepath.Join(target, "f")); err != nil || string(got) != "ok" {
			t.Errorf("Pin(%q): target shows %q, %v", sp, got, err)
		}
	}
}

func TestPinCreatesAMissingDirectory(t *testing.T) {
	needRoot(t)
	vol, pins := volume(t)
	target := filepath.Join(pins, "new")
	if err := Pin(vol, "a/b/c", target, 0o777); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(vol, "a", "b", "c"))
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
		t.Fatalf("created subPath: %v, %v; want a 0777 directory", fi, err)
	}
	if err := os.WriteFile(filepath.Join(target, "w"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(vol, "a", "b", "c", "w")); err != nil {
		t.Fatalf("a write through the target did not land in the volume: %v", err)
	}
	// perm 0 creates nothing.
	if err := Pin(vol, "absent", filepath.Join(pins, "absent"), 0); err == nil || errors.Is(err, ErrEscapes) {
		t.Fatalf("Pin of a missing subPath without create = %v, want a not-found error", err)
	}
	// A missing directory below a link out of the volume is never created outside.
	if err := os.Symlink("/", filepath.Join(vol, "out")); err != nil {
		t.Fatal(err)
	}
	outside := "interlink-subpath-test-must-not-exist"
	if err := Pin(vol, "out/tmp/"+outside, filepath.Join(pins, "o"), 0o777); !errors.Is(err, ErrEscapes) {
		t.Fatalf("Pin through a link out = %v, want ErrEscapes", err)
	}
	if _, err := os.Stat("/tmp/" + outside); err == nil {
		os.Remove("/tmp/" + outside)
		t.Fatal("Pin created a directory outside the volume")
	}
}

func TestPinFileAndUnpin(t *testing.T) {
	needRoot(t)
	vol, pins := volume(t)
	if err := os.WriteFile(filepath.Join(vol, "app.conf"), []byte("conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(pins, "0")
	// An empty directory placeholder (what a backend makes before the engine's create) is turned into a file.
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Pin(vol, "app.conf", target, 0o777); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(target); err != nil || string(got) != "conf" {
		t.Fatalf("pinned file shows %q, %v", got, err)
	}
	// Pinning again does not stack mounts.
	if err := Pin(vol, "app.conf", target, 0o777); err != nil {
		t.Fatal(err)
	}
	if m, _ := MountsUnder(target); len(m) != 1 {
		t.Fatalf("after two pins %d mounts are on the target, want 1", len(m))
	}
	if err := Unpin(target); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); len(got) != 0 {
		t.Fatalf("after Unpin the target still shows %q", got)
	}
	if err := Unpin(filepath.Join(pins, "never")); err != nil {
		t.Fatalf("Unpin of a missing target: %v", err)
	}
}

func TestUnpinAllProtectsTheVolumeFromRemoveAll(t *testing.T) {
	needRoot(t)
	vol, pins := volume(t)
	if err := os.MkdirAll(filepath.Join(vol, "keep"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "keep", "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a/0", "a/1", "b/0"} {
		if err := Pin(vol, "keep", filepath.Join(pins, c), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := UnpinAll(pins); err != nil {
		t.Fatal(err)
	}
	if m, _ := MountsUnder(pins); len(m) != 0 {
		t.Fatalf("mounts left under the pins: %v", m)
	}
	if err := os.RemoveAll(pins); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(vol, "keep", "precious")); err != nil {
		t.Fatalf("removing the unpinned directory removed the volume's data: %v", err)
	}
	if err := UnpinAll(filepath.Join(pins, "gone")); err != nil {
		t.Fatalf("UnpinAll of a missing directory: %v", err)
	}
}

func TestUnescape(t *testing.T) {
	if got := unescape(`/a\040b\134c\011`); got != "/a b\\c\t" {
		t.Fatalf("unescape = %q", got)
	}
}

// withoutSysAdminEnv marks the run of this test binary that TestPinWithoutTheRightToMount starts without
// CAP_SYS_ADMIN.
const withoutSysAdminEnv = "SUBPATH_TEST_WITHOUT_SYS_ADMIN"

// Root without CAP_SYS_ADMIN (a backend in an ordinary container, a reduced capability set) cannot mount:
// Pin falls back to a checked symbolic link, as for any unprivileged user, instead of failing every subPath;
// a link out of the volume is still refused.
func TestPinWithoutTheRightToMount(t *testing.T) {
	if os.Getenv(withoutSysAdminEnv) == "" {
		needRoot(t)
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Fatalf("setpriv (util-linux) is needed to drop CAP_SYS_ADMIN: %v", err)
		}
		cmd := exec.Command(setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", os.Args[0],
			"-test.run=^TestPinWithoutTheRightToMount$", "-test.v")
		cmd.Env = append(os.Environ(), withoutSysAdminEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestPinWithoutTheRightToMount") {
			t.Fatalf("without CAP_SYS_ADMIN: %v\n%s", err, out)
		}
		return
	}
	vol, pins := volume(t)
	if err := os.MkdirAll(filepath.Join(vol, "data"), 0o777); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(pins, "0")
	if err := os.MkdirAll(target, 0o755); err != nil { // the mount point a backend makes before the engine's create
		t.Fatal(err)
	}
	if err := Pin(vol, "data", target, 0o777); err != nil {
		t.Fatalf("Pin without CAP_SYS_ADMIN: %v", err)
	}
	if link, err := os.Readlink(target); err != nil || link != filepath.Join(vol, "data") {
		t.Fatalf("the target should be a link to the checked path: %q %v", link, err)
	}
	if err := os.RemoveAll(filepath.Join(vol, "data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(vol, "data")); err != nil {
		t.Fatal(err)
	}
	if err := Pin(vol, "data", target, 0o777); !errors.Is(err, ErrEscapes) {
		t.Fatalf("a link out of the volume without CAP_SYS_ADMIN: %v, want a refusal", err)
	}
	if _, err := os.Lstat(target); err == nil {
		if link, _ := os.Readlink(target); link != "" {
			t.Fatalf("after the refusal the target still leads to %q", link)
		}
	}
}

// TestNoMountBelowSeesFileAndDirectoryPins: the walk that spares UnpinAll the host's whole mountinfo finds a
// pinned file and a pinned directory, which are bind mounts of the same filesystem (same device), and finds
// nothing once they are unpinned.
func TestNoMountBelowSeesFileAndDirectoryPins(t *testing.T) {
	needRoot(t)
	vol, pins := volume(t)
	if err := os.MkdirAll(filepath.Join(vol, "dir", "deeper"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(pins, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if none, known := noMountBelow(pins); !known || !none {
		t.Fatalf("noMountBelow of a directory without mounts = %v, %v; want true, true (Linux >= 5.8)", none, known)
	}
	for _, pin := range []struct{ subPath, target string }{{"file", "a/b/file"}, {"dir", "a/dir"}} {
		target := filepath.Join(pins, pin.target)
		if err := Pin(vol, pin.subPath, target, 0o777); err != nil {
			t.Fatal(err)
		}
		if none, known := noMountBelow(pins); !known || none {
			t.Errorf("noMountBelow with %s pinned at %s = %v, %v; want false, true", pin.subPath, pin.target, none, known)
		}
		if err := Unpin(target); err != nil {
			t.Fatal(err)
		}
	}
	if none, known := noMountBelow(pins); !known || !none {
		t.Errorf("noMountBelow once unpinned = %v, %v; want true, true", none, known)
	}
	if none, known := noMountBelow(filepath.Join(pins, "gone")); known || none {
		t.Errorf("noMountBelow of a missing directory = %v, %v; want false, false (UnpinAll reads mountinfo)", none, known)
	}
}
