package slurm

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// trashDir, in the pod directory root, holds the directories of deleted pods until the background removal
// has unlinked them. Its name is no pod UID (a UID starts with a letter or digit), so List and Status never
// take it for a pod.
const trashDir = ".trash"

// Retries of a trashed directory that could not be removed (a process of a job SLURM is still killing may
// write into it): every trashRetryWait, trashTries times in all; what is still left is removed at the next
// start of the backend.
const (
	trashTries     = 12
	trashRetryWait = 5 * time.Second
)

// discardDir takes a deleted pod's directory away: renamed into the trash at once and removed in the
// background, so a Delete does not wait for the unlinking of every file of the pod, which costs about as
// much as the scancel itself. From the rename on, the UID has no directory: a status answers NotFound and a
// new Create of it starts afresh. A directory with pinned subPaths is removed in place as before
// (pod.RemoveDir undoes the bind mounts first, and a rename would carry them along), and so is one the
// rename fails for.
func (b *Backend) discardDir(dir string) error {
	if _, err := os.Lstat(filepath.Join(dir, pinsDir)); !notExist(err) {
		return b.removeDir(dir)
	}
	dst := b.trash.name(filepath.Base(dir))
	err := os.Rename(dir, dst)
	if err != nil && notExist(err) {
		if _, serr := os.Lstat(dir); notExist(serr) {
			return nil // no directory: nothing to remove
		}
		// The trash itself is missing (removed by hand): make it again.
		if err = os.MkdirAll(filepath.Dir(dst), 0o700); err == nil {
			err = os.Rename(dir, dst)
		}
	}
	if err != nil {
		b.log.Warn("cannot move a deleted pod's directory to the trash; removing it in place", "dir", dir, "err", err)
		return b.removeDir(dir)
	}
	b.trash.add(dst)
	return nil
}

// trashBin removes trashed directories one at a time in the background: one worker, so that a burst of
// deletes adds one sequence of removals beside the scancels, not one per delete.
type trashBin struct {
	dir string
	log *slog.Logger
	seq atomic.Uint64

	mu      sync.Mutex
	queue   []trashItem
	running bool
	idle    *sync.Cond // broadcast when the queue is empty and the worker has stopped
}

type trashItem struct {
	path  string
	tries int
}

// newTrashBin makes the trash directory of root and queues what an earlier run of the backend left in it.
func newTrashBin(root string, log *slog.Logger) (*trashBin, error) {
	t := &trashBin{dir: filepath.Join(root, trashDir), log: log}
	t.idle = sync.NewCond(&t.mu)
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		t.add(filepath.Join(t.dir, e.Name()))
	}
	return t, nil
}

// name is a path in the trash for a directory called base, unique within this process and across restarts.
func (t *trashBin) name(base string) string {
	return filepath.Join(t.dir, base+"."+strconv.FormatInt(time.Now().UnixNano(), 36)+"-"+strconv.FormatUint(t.seq.Add(1), 36))
}

// add queues path for removal.
func (t *trashBin) add(path string) { t.push(trashItem{path: path}) }

func (t *trashBin) push(it trashItem) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue = append(t.queue, it)
	if !t.running {
		t.running = true
		go t.drain()
	}
}

func (t *trashBin) drain() {
	for {
		t.mu.Lock()
		if len(t.queue) == 0 {
			t.running = false
			t.idle.Broadcast()
			t.mu.Unlock()
			return
		}
		it := t.queue[0]
		t.queue = t.queue[1:]
		t.mu.Unlock()
		err := pod.RemoveDir(it.path)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if it.tries++; it.tries < trashTries {
			time.AfterFunc(trashRetryWait, func() { t.push(it) })
			continue
		}
		t.log.Error("cannot remove a deleted pod's directory; the backend's next start tries again", "dir", it.path, "err", err)
	}
}

// wait blocks until the queue is empty and nothing is being removed (retries waiting for their time are not
// counted), for tests.
func (t *trashBin) wait() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.running || len(t.queue) > 0 {
		t.idle.Wait()
	}
}
