package slurm

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim/shimtest"
)

// preparedDir writes the directory of a pod as Create does before sbatch and returns it.
func preparedDir(t *testing.T, b *Backend) string {
	t.Helper()
	p := conformance.NewPod("trash", conformance.ShellContainer("main", "true"))
	dir := b.podDir(string(p.UID))
	if _, err := b.prepare(p, conformance.NewCreateRequest(p, conformance.Objects{}), dir); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return dir
}

func trashEntries(t *testing.T, b *Backend) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(b.cfg.Root, trashDir))
	if err != nil {
		t.Fatalf("the trash: %v", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestDiscardDirIsGoneAtOnce: a deleted pod's directory is gone from its path when discardDir returns, and
// the background removal then leaves nothing in the trash; List and Status never see the trash.
func TestDiscardDirIsGoneAtOnce(t *testing.T) {
	b := offlineBackend(t, Config{Runtime: RuntimeNone})
	var dirs []string
	for range 5 {
		dirs = append(dirs, preparedDir(t, b))
	}
	for _, dir := range dirs {
		if err := b.discardDir(dir); err != nil {
			t.Fatalf("discardDir: %v", err)
		}
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Fatalf("%s is still there after discardDir: %v", dir, err)
		}
	}
	if err := b.discardDir(dirs[0]); err != nil {
		t.Errorf("discardDir of a directory already gone: %v", err)
	}
	b.trash.wait()
	if left := trashEntries(t, b); len(left) != 0 {
		t.Errorf("the trash still holds %v", left)
	}
	if pod.ValidPodUID(trashDir) == nil {
		t.Errorf("the trash's name %q is a valid pod UID: List would take it for a pod", trashDir)
	}
}

// TestDiscardDirWithPinsRemovesInPlace: a directory with pinned subPaths is removed where it is (its pins
// are undone first), never moved into the trash.
func TestDiscardDirWithPinsRemovesInPlace(t *testing.T) {
	b := offlineBackend(t, Config{Runtime: RuntimeNone})
	dir := preparedDir(t, b)
	if err := os.MkdirAll(pod.PinDir(dir, "main"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.discardDir(dir); err != nil {
		t.Fatalf("discardDir: %v", err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s is still there: %v", dir, err)
	}
	if left := trashEntries(t, b); len(left) != 0 {
		t.Errorf("a directory with pins went to the trash: %v", left)
	}
}

// TestTrashLeftByAnEarlierRunIsRemoved: what a backend that stopped left in the trash is removed by the next
// one, and a trash removed by hand is made again by the next delete.
func TestTrashLeftByAnEarlierRunIsRemoved(t *testing.T) {
	root := t.TempDir()
	left := filepath.Join(root, trashDir, "uid-left.1-1")
	if err := os.MkdirAll(filepath.Join(left, containersDir, "main"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, containersDir, "main", "log"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(Config{Root: root, Runtime: RuntimeNone, Shim: shimtest.Build(t)})
	b, err := newBackend(backend.Env{Name: "slurm", Config: raw, DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("newBackend: %v", err)
	}
	b.trash.wait()
	if _, err := os.Lstat(left); !os.IsNotExist(err) {
		t.Errorf("%s left by an earlier run is still there: %v", left, err)
	}

	if err := os.RemoveAll(filepath.Join(root, trashDir)); err != nil {
		t.Fatal(err)
	}
	dir := preparedDir(t, b)
	if err := b.discardDir(dir); err != nil {
		t.Fatalf("discardDir without a trash: %v", err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", dir, err)
	}
	b.trash.wait()
	if left := trashEntries(t, b); len(left) != 0 {
		t.Errorf("the trash still holds %v", left)
	}
}

// TestPrepareWritesDraft: what prepare writes is all there with its modes (the env file 0600, the script
// 0700), the record has no job id yet (the mark of a submission under way), and no temporary file is left.
func TestPrepareWritesDraft(t *testing.T) {
	b := offlineBackend(t, Config{Runtime: RuntimeNone})
	dir := preparedDir(t, b)
	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, scriptFile):                   0o700,
		filepath.Join(dir, containersDir, "main", "env"): 0o600,
		filepath.Join(dir, recordFile):                   0o644,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	rec, err := readRecord(dir)
	if err != nil || rec.JobID != "" {
		t.Fatalf("the draft record = %+v, %v; want one without a job id", rec, err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "."+recordFile+".tmp-*"))
	if len(matches) > 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

// TestLabCutShortSubmissionIsCancelled: a directory whose record has no job id is a submission that stopped
// while sbatch ran (the backend was killed): the job it may have made, found by its name, is cancelled by a
// Delete, and by a new Create, which then submits the pod afresh.
func TestLabCutShortSubmissionIsCancelled(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	for _, op := range []string{"delete", "create"} {
		p := conformance.NewPod("cut-short-"+op, conformance.ShellContainer("main", "true"))
		p.Annotations[AnnotationFlags] = "--hold"
		dir := b.podDir(string(p.UID))
		if _, err := b.prepare(p, conformance.NewCreateRequest(p, conformance.Objects{}), dir); err != nil {
			t.Fatalf("prepare: %v", err)
		}
		out, err := exec.Command("sbatch", "--parsable", "--hold", "--mem=64M", "--output=/dev/null",
			"--job-name="+string(p.UID), "--wrap", "sleep 600").Output()
		if err != nil {
			t.Fatalf("sbatch: %v", err)
		}
		orphan, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
		t.Cleanup(func() { _ = exec.Command("scancel", orphan).Run() })
		if st := statusOf(t, b, p); st.Containers[0].State.Waiting == nil || st.Containers[0].State.Waiting.Reason != pod.ReasonContainerCreating {
			t.Errorf("%s: status of a pod being submitted = %+v, want waiting %s", op, st.Containers[0].State, pod.ReasonContainerCreating)
		}
		var newID string
		if op == "delete" {
			err = b.Delete(ctxFor(t, time.Minute), backend.DeleteRequest{Pod: p, GracePeriod: time.Second})
		} else {
			newID = createPod(t, b, p, conformance.Objects{})
		}
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if j := squeueJobOf(t, b, orphan); j != nil && stateClass(j.JobState) != jobOver {
			t.Errorf("%s: the cut-short submission's job %s is still %s", op, orphan, j.JobState)
		}
		if op == "create" {
			if newID == "" || newID == orphan {
				t.Errorf("create after a cut-short submission gave job %q (the orphan was %s)", newID, orphan)
			} else if j := squeueJobOf(t, b, newID); j == nil || stateClass(j.JobState) == jobOver {
				t.Errorf("the new job %s of the pod is not in the queue: %+v", newID, j)
			}
		}
	}
}
