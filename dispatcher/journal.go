package dispatcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// Entry is what the journal knows about one pod: where it runs, and its last status so that a pod whose
// backend is down keeps answering.
type Entry struct {
	UID       string    `json:"uid"`
	Backend   string    `json:"backend"`
	RemoteID  string    `json:"remoteID"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
	// Adopted marks a pod found by reconciliation rather than created through this dispatcher.
	Adopted bool `json:"adopted,omitempty"`
	// MissingSince is when reconciliation last found the backend without this pod; zero while it has it.
	MissingSince time.Time `json:"missingSince,omitzero"`
	// InitContainers and Containers name the pod's containers in spec order, as its create carried them
	// (none for an adopted pod): what the admin API counts and asks its backend about without the pod's spec.
	InitContainers []string             `json:"initContainers,omitempty"`
	Containers     []string             `json:"containers,omitempty"`
	LastStatus     *interlink.PodStatus `json:"lastStatus,omitempty"`
	// StatusTime is when LastStatus was recorded.
	StatusTime time.Time `json:"statusTime,omitzero"`
}

// Journal is the bbolt store of Entries keyed by pod UID. It is what makes routing survive a restart; the
// engines stay the source of truth about the pods themselves.
type Journal struct {
	db *bolt.DB
	// mu is held for reading by every transaction and for writing by Close: nothing reaches the file once
	// it is closed, whatever goroutine outlived the shutdown.
	mu     sync.RWMutex
	closed bool
}

// ErrJournalClosed is what every journal operation returns after Close.
var ErrJournalClosed = errors.New("the journal is closed (the dispatcher is shutting down)")

func (j *Journal) view(f func(*bolt.Tx) error) error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return ErrJournalClosed
	}
	return j.db.View(f)
}

// update runs f in a write transaction that is durable when it returns. Concurrent writes share one
// transaction, and so one fsync (bbolt's Batch): with creates, deletes and first statuses arriving eight at
// a time, each no longer waits for the fsyncs of all those before it. f may therefore run more than once
// (alone again when another write of its batch failed): every f here only writes the transaction.
func (j *Journal) update(f func(*bolt.Tx) error) error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return ErrJournalClosed
	}
	return j.db.Batch(f)
}

// batchDelay is how long a write waits for others to share its transaction: well under one fsync, so that a
// lone write is barely slower and concurrent ones share.
const batchDelay = time.Millisecond

var (
	podsBucket = []byte("pods")
	// specsBucket holds each created pod as its create carried it, beside its entry and under the same key:
	// what the admin API asks its backend about (a backend reads the restart policy and the probes to make
	// a status of what it runs). Kept apart so that status writes, which rewrite entries, never copy it.
	specsBucket = []byte("specs")
	// refusalsBucket holds the answers of refused creates (Refusal), by pod UID: interLink never sends a
	// refused create again, so the answer is the pod's status where its user reads it, across restarts too.
	refusalsBucket = []byte("refusals")
)

// OpenJournal opens (creating it if needed) the journal file under dir, waiting up to 5 s for another
// process to release it.
func OpenJournal(dir string) (*Journal, error) { return OpenJournalTimeout(dir, 5*time.Second) }

// OpenJournalTimeout is OpenJournal with the wait for the file lock given.
func OpenJournalTimeout(dir string, lockWait time.Duration) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the data directory %s: %w; set data_dir to a writable directory", dir, err)
	}
	path := filepath.Join(dir, "journal.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("the journal %s is locked by another process: is another dispatcher running with the same data_dir?", path)
		}
		return nil, fmt.Errorf("cannot open the journal %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{podsBucket, specsBucket, refusalsBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot initialise the journal %s: %w", path, err)
	}
	db.MaxBatchDelay = batchDelay
	return &Journal{db: db}, nil
}

// Check reports whether the journal can be read: an error after Close, or when the file has gone bad.
func (j *Journal) Check() error {
	return j.view(func(tx *bolt.Tx) error {
		if tx.Bucket(podsBucket) == nil {
			return fmt.Errorf("the journal has no %s bucket", podsBucket)
		}
		return nil
	})
}

// Close closes the journal file once the operations under way are done; later ones fail with
// ErrJournalClosed. Closing twice does nothing.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	return j.db.Close()
}

// Get returns the entry of uid, if any.
func (j *Journal) Get(uid string) (Entry, bool, error) {
	var e Entry
	var found bool
	err := j.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(podsBucket).Get([]byte(uid))
		if b == nil {
			return nil
		}
		found = true
		var err error
		e, err = decodeEntry(b)
		return err
	})
	return e, found, err
}

// HeadOf is what HeadsOf read of one UID.
type HeadOf struct {
	Entry Entry // without its LastStatus
	Found bool  // the UID has an entry
	Err   error // the journal could not be read, or the entry cannot be decoded
}

// HeadsOf returns the entries of uids without their LastStatus, which is not even decoded (what a caller
// that takes the statuses from memory reads: the Core keeps every one it recorded), in one read transaction
// and in their order. When the journal cannot be read at all, every one carries that error.
func (j *Journal) HeadsOf(uids []string) []HeadOf {
	out := make([]HeadOf, len(uids))
	err := j.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(podsBucket)
		for i, uid := range uids {
			if data := b.Get([]byte(uid)); data != nil {
				out[i].Found = true
				out[i].Entry, out[i].Err = decodeHead(uid, data)
			}
		}
		return nil
	})
	if err != nil {
		for i := range out {
			out[i] = HeadOf{Err: err}
		}
	}
	return out
}

// Put writes e, replacing any entry of the same UID, and is durable when it returns.
func (j *Journal) Put(e Entry) error { return j.PutAll([]Entry{e}) }

// PutCreated writes the entry of a pod just created and the pod itself (see specsBucket), in one transaction.
func (j *Journal) PutCreated(e Entry, p *v1.Pod) error {
	pd, err := json.Marshal(p)
	if err != nil {
		return err
	}
	ed, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return j.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(podsBucket).Put([]byte(e.UID), ed); err != nil {
			return err
		}
		return tx.Bucket(specsBucket).Put([]byte(e.UID), pd)
	})
}

// Pod returns the pod of uid as its create carried it (PutCreated); false for a pod the journal has no
// create of (an adopted one, or one journaled before the journal kept pods).
func (j *Journal) Pod(uid string) (*v1.Pod, bool, error) {
	var p *v1.Pod
	err := j.view(func(tx *bolt.Tx) error {
		data := tx.Bucket(specsBucket).Get([]byte(uid))
		if data == nil {
			return nil
		}
		p = &v1.Pod{}
		if err := json.Unmarshal(data, p); err != nil {
			return fmt.Errorf("the journal's pod %q is corrupt: %w", uid, err)
		}
		return nil
	})
	return p, p != nil, err
}

// PutAll writes several entries in one transaction.
func (j *Journal) PutAll(es []Entry) error {
	if len(es) == 0 {
		return nil
	}
	return j.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(podsBucket)
		for _, e := range es {
			data, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(e.UID), data); err != nil {
				return err
			}
		}
		return nil
	})
}

// Update applies f to the entry of uid inside one transaction; f returns false to leave it unchanged. A
// missing entry is not an error and f is not called.
func (j *Journal) Update(uid string, f func(*Entry) bool) error {
	return j.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(podsBucket)
		data := b.Get([]byte(uid))
		if data == nil {
			return nil
		}
		e, err := decodeEntry(data)
		if err != nil {
			return err
		}
		if !f(&e) {
			return nil
		}
		out, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put([]byte(uid), out)
	})
}

// Delete removes the entry of uid; an absent entry is not an error.
func (j *Journal) Delete(uid string) error {
	return j.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(specsBucket).Delete([]byte(uid)); err != nil {
			return err
		}
		return tx.Bucket(podsBucket).Delete([]byte(uid))
	})
}

// Refusal is the answer of a refused create, kept by the journal for the pod's status.
type Refusal struct {
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// PutRefusal records the refusal of uid's create, and removes the refusals of forget, in one transaction.
func (j *Journal) PutRefusal(uid string, r Refusal, forget []string) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return j.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(refusalsBucket)
		for _, k := range forget {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return b.Put([]byte(uid), data)
	})
}

// DeleteRefusals removes the refusals of uids; absent ones are not an error.
func (j *Journal) DeleteRefusals(uids ...string) error {
	if len(uids) == 0 {
		return nil
	}
	return j.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(refusalsBucket)
		for _, k := range uids {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Refusals returns every recorded refusal by pod UID; one that cannot be decoded is left out and named in
// bad, so that its caller can remove it.
func (j *Journal) Refusals() (out map[string]Refusal, bad []string, err error) {
	out = map[string]Refusal{}
	err = j.view(func(tx *bolt.Tx) error {
		return tx.Bucket(refusalsBucket).ForEach(func(k, v []byte) error {
			var r Refusal
			if json.Unmarshal(v, &r) != nil {
				bad = append(bad, string(k))
				return nil
			}
			out[string(k)] = r
			return nil
		})
	})
	return out, bad, err
}

// All returns every entry.
func (j *Journal) All() ([]Entry, error) {
	var out []Entry
	err := j.view(func(tx *bolt.Tx) error {
		return tx.Bucket(podsBucket).ForEach(func(k, v []byte) error {
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("journal entry %q is corrupt: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// Heads returns every entry without its LastStatus, which is not even decoded: what a listing that takes
// the statuses from memory (the Core keeps every one it recorded) reads, at a fraction of All's cost.
func (j *Journal) Heads() ([]Entry, error) {
	var out []Entry
	err := j.view(func(tx *bolt.Tx) error {
		return tx.Bucket(podsBucket).ForEach(func(k, v []byte) error {
			e, err := decodeHead(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// entryHead decodes an Entry but its LastStatus, which its own field of the same key shadows and skips.
type entryHead struct {
	Entry
	LastStatus skipJSON `json:"lastStatus,omitempty"`
}

// decodeHead reads the journal record of uid without its LastStatus.
func decodeHead(uid string, data []byte) (Entry, error) {
	var h entryHead
	if err := json.Unmarshal(data, &h); err != nil {
		return Entry{}, fmt.Errorf("journal entry %q is corrupt: %w", uid, err)
	}
	return h.Entry, nil
}

// skipJSON decodes any JSON value to nothing.
type skipJSON struct{}

func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

// SetStatuses records the last known status of several journaled pods, as known at at, in one transaction,
// and returns the UIDs that have an entry; UIDs without one (a pod deleted meanwhile) are skipped, so that the
// journal only ever holds pods the dispatcher routes, and so is a status older than the one an entry holds.
func (j *Journal) SetStatuses(st map[string]interlink.PodStatus, at time.Time) (map[string]bool, error) {
	if len(st) == 0 {
		return nil, nil
	}
	var written map[string]bool
	err := j.update(func(tx *bolt.Tx) error {
		written = make(map[string]bool, len(st)) // a retried transaction starts again
		b := tx.Bucket(podsBucket)
		for uid, s := range st {
			data := b.Get([]byte(uid))
			if data == nil {
				continue
			}
			written[uid] = true
			e, err := decodeEntry(data)
			if err != nil {
				return err
			}
			if e.StatusTime.After(at) {
				continue // a status answered later is there already
			}
			e.LastStatus, e.StatusTime = &s, at.UTC()
			out, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(uid), out); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return written, nil
}

// decodeEntry reads one journal record, the JSON form of an Entry.
func decodeEntry(data []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return Entry{}, err
	}
	return e, nil
}
