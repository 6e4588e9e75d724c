package pod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// Only disk emptyDirs with a sizeLimit are watched, and one is over its limit once what du counts under it
// exceeds the limit.
func TestOverLimit(t *testing.T) {
	dir := t.TempDir()
	vols := map[string]*Volume{
		"scratch": {Name: "scratch", Kind: KindEmptyDir, HostPath: dir, SizeLimitBytes: 1 << 20},
		"mem":     {Name: "mem", Kind: KindEmptyDir, Medium: v1.StorageMediumMemory, SizeLimitBytes: 1},
		"nolimit": {Name: "nolimit", Kind: KindEmptyDir, HostPath: dir},
	}
	dirs := SizeLimitedDirs(vols)
	if len(dirs) != 1 || dirs[0].Name != "scratch" {
		t.Fatalf("SizeLimitedDirs = %v, want only scratch", dirs)
	}
	if msg := OverLimit(dirs); msg != "" {
		t.Fatalf("empty dir over its limit: %s", msg)
	}
	if err := os.WriteFile(filepath.Join(dir, "big"), make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if used := DiskUsage(dir); used < 2<<20 {
		t.Errorf("DiskUsage = %d after writing 2 MiB", used)
	}
	want := `Usage of EmptyDir volume "scratch" exceeds the limit "1Mi".`
	if msg := OverLimit(dirs); msg != want {
		t.Errorf("OverLimit = %q, want %q", msg, want)
	}
}

// What the eviction stopped is terminated Evicted (137) since its own start; what had not finished never
// runs and keeps its counts; what had finished keeps its own ending.
func TestEvictionApply(t *testing.T) {
	specs := []v1.Container{{Name: "running", Image: "busybox"}, {Name: "waiting"}, {Name: "done"}}
	started := time.Now().Add(-time.Minute)
	ev := &Eviction{Message: "over", Time: time.Now(), Killed: []string{"id-running"}}
	st := []v1.ContainerStatus{
		Running(&specs[0], started, 0),
		Waiting(&specs[1], ReasonContainerCreating, "", 2),
		Terminated(&specs[2], Termination{ExitCode: 0, StartedAt: started, FinishedAt: started.Add(time.Second)}, 0),
	}
	st[0].ContainerID = "engine://id-running"
	ev.Apply(st, func(s *v1.ContainerStatus) string { return strings.TrimPrefix(s.ContainerID, "engine://") })
	if term := st[0].State.Terminated; term == nil || term.ExitCode != 137 || term.Reason != ReasonEvicted ||
		term.Message != "over" || !term.StartedAt.Time.Equal(started) || term.ContainerID != "engine://id-running" || st[0].Ready {
		t.Errorf("running: %+v ready=%v, want terminated 137 Evicted since its start", st[0].State, st[0].Ready)
	}
	if term := st[1].State.Terminated; term == nil || term.Reason != ReasonEvicted || term.ExitCode == 0 ||
		!strings.Contains(term.Message, "evicted: over") || st[1].RestartCount != 2 {
		t.Errorf("waiting: %+v restarts=%d, want terminated Evicted non-zero, restarts kept", st[1].State, st[1].RestartCount)
	}
	if term := st[2].State.Terminated; term == nil || term.Reason != ReasonCompleted || term.ExitCode != 0 {
		t.Errorf("done: %+v, want its own completion kept", st[2].State)
	}
}
