package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/subpath"
)

// Links that SubPathSwapPod puts in place of the subPath: the host's root, absolute and relative (deep
// enough to climb from any pod directory to "/").
var (
	LinkToRootAbsolute = "/"
	LinkToRootRelative = strings.Repeat("../", 24)
)

// SubPathSwapPod is a pod that tries to reach the host's files through a subPath: its emptyDir "e" has a
// directory "sp", mounted by container "main" at /sp, which is moved aside (to "e/orig") and replaced by the
// symbolic link link before main's run that writes. byInit: an init container does the swap, main runs once
// (restartPolicy Never). Otherwise main does it itself: its first run swaps and fails, and its next run
// (restartPolicy OnFailure) writes. The run that writes puts hostDir/marker through /sp and prints
// "wrote through the subPath": were the link followed, the marker would be on the host (see
// SubPathEscaped).
func SubPathSwapPod(name, hostDir, link string, byInit bool) *v1.Pod {
	swap := "mkdir -p /e/sp && mv /e/sp /e/orig && ln -s " + shellQuote(link) + " /e/sp && touch /e/swapped"
	dir := shellQuote("/sp" + hostDir)
	write := "if [ -e /e/swapped ]; then mkdir -p " + dir + " && echo escaped > " + dir + "/marker && echo wrote through the subPath; exit 0; fi; "
	main := ShellContainer("main", write+swap+" && echo swapped; exit 1")
	main = Mount(Mount(main, "e", "/e", "", false), "e", "/sp", "sp", false)
	p := WithVolumes(NewPod(name, main), EmptyDirVolume("e"))
	if byInit {
		WithInit(p, Mount(ShellContainer("swap", swap), "e", "/e", "", false))
	} else {
		p.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	}
	return p
}

// SubPathEscaped fails t when the marker of a SubPathSwapPod is on the host, and removes it.
func SubPathEscaped(t *testing.T, hostDir string) {
	t.Helper()
	marker := filepath.Join(hostDir, "marker")
	if _, err := os.Lstat(marker); err == nil {
		_ = os.Remove(marker)
		t.Errorf("the container wrote %s on the host through a subPath swapped for a symbolic link out of its volume", marker)
	}
}

// SubPathRefused checks that container name of a SubPathSwapPod is held back with reason
// CreateContainerError and a message naming the subPath and saying it leads outside the volume (waiting, or
// terminated).
func SubPathRefused(t *testing.T, st interlink.PodStatus, name string) {
	t.Helper()
	for _, s := range append(st.InitContainers, st.Containers...) {
		if s.Name != name {
			continue
		}
		reason, msg := "", ""
		switch {
		case s.State.Waiting != nil:
			reason, msg = s.State.Waiting.Reason, s.State.Waiting.Message
		case s.State.Terminated != nil:
			reason, msg = s.State.Terminated.Reason, s.State.Terminated.Message
		}
		if reason != "CreateContainerError" || !strings.Contains(msg, `subPath "sp"`) || !strings.Contains(msg, "outside the volume") {
			t.Errorf("container %s: state %+v; want reason CreateContainerError with a message naming subPath \"sp\" and saying it leads outside the volume", name, s.State)
		}
		return
	}
	t.Errorf("no status for container %s", name)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// HostPathSubPathPod is a pod whose container "main" mounts the directory "keep" of the hostPath volume
// hostDir by subPath and prints keep/precious, which PrepareHostPathSubPath writes. Its test deletes the pod
// and checks with HostPathSurvived that removing the pod's directory did not reach the host's data through
// the pinned subPath.
func HostPathSubPathPod(name, hostDir string) *v1.Pod {
	dirType := v1.HostPathDirectory
	c := Mount(ShellContainer("main", "cat /k/precious"), "h", "/k", "keep", true)
	return WithVolumes(NewPod(name, c), v1.Volume{Name: "h", VolumeSource: v1.VolumeSource{
		HostPath: &v1.HostPathVolumeSource{Path: hostDir, Type: &dirType}}})
}

// PrepareHostPathSubPath writes hostDir/keep/precious for a HostPathSubPathPod.
func PrepareHostPathSubPath(t *testing.T, hostDir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(hostDir, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "keep", "precious"), []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// HostPathSurvived fails t when hostDir/keep/precious is gone.
func HostPathSurvived(t *testing.T, hostDir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(hostDir, "keep", "precious")); err != nil {
		t.Errorf("the hostPath's data is gone after the pod was deleted (removing the pod's directory went through a pinned subPath): %v", err)
	}
}

// MountsBelow lists the mount points at or below dir, for tests that check that a backend left no pin behind.
func MountsBelow(t *testing.T, dir string) []string {
	t.Helper()
	out, err := subpath.MountsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// DeletedWithoutHarm checks what a HostPathSubPathPod's Delete must leave: the hostPath's data (see
// HostPathSurvived), no mount below the pod's directory podDir, and no podDir.
func DeletedWithoutHarm(t *testing.T, hostDir, podDir string) {
	t.Helper()
	HostPathSurvived(t, hostDir)
	if m := MountsBelow(t, podDir); len(m) > 0 {
		t.Errorf("mounts left after Delete: %v", m)
	}
	if _, err := os.Stat(podDir); err == nil {
		t.Errorf("the pod's directory %s is still there", podDir)
	}
}
