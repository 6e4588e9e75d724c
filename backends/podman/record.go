package podman

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// record is what the backend keeps on disk for one pod, in <DataDir>/pods/<uid>/record.json: the create
// request (so a restarted backend can finish launching it and answer for it) and what went wrong after Create
// answered (so failures survive a restart). Everything else is asked of the engine.
type record struct {
	Pod        *v1.Pod                        `json:"pod"`
	Containers []interlink.RetrievedContainer `json:"containers"`
	PodName    string                         `json:"podName"` // the Podman pod's name, also the remote id
	Created    time.Time                      `json:"created"`
	// Launched is set once every container was started (init containers having completed).
	Launched bool `json:"launched"`
	// Failures hold, per container name, why it could not be pulled, created or started.
	Failures map[string]failure `json:"failures,omitempty"`
	// InitFailed names the init container whose failure ended the pod.
	InitFailed string `json:"initFailed,omitempty"`
	// InitRestarts counts the restarts of init containers, which the backend itself retries.
	InitRestarts map[string]int32 `json:"initRestarts,omitempty"`
	// InitLast is the last failed run of an init container being retried.
	InitLast map[string]lastRun `json:"initLast,omitempty"`
	// Eviction is set once the backend evicted the pod (an emptyDir over its sizeLimit).
	Eviction *pod.Eviction `json:"eviction,omitempty"`
}

type failure struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Terminated marks a container that could not start at all (exit 128, as the kubelet reports it),
	// rather than one that waits.
	Terminated bool `json:"terminated,omitempty"`
	// At is when the failure happened: the finish time of a container that could not start.
	At time.Time `json:"at,omitzero"`
}

// status is the status of container c that the failure f recorded: terminated with exit 128 (as the kubelet
// reports a container that could not start), or waiting.
func (f failure) status(c *v1.Container, restarts int32) v1.ContainerStatus {
	if f.Terminated {
		return pod.Terminated(c, pod.Termination{ExitCode: 128, Reason: f.Reason, Message: f.Message, FinishedAt: f.At}, restarts)
	}
	return pod.Waiting(c, f.Reason, f.Message, restarts)
}

type lastRun struct {
	ExitCode   int32     `json:"exitCode"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

const recordFile = "record.json"

// podsDir holds one directory per pod, named by its UID.
func (b *Backend) podsDir() string { return filepath.Join(b.env.DataDir, "pods") }

func (b *Backend) podDir(uid string) string { return filepath.Join(b.podsDir(), uid) }

// save writes r atomically (see writeRecord); r must not be shared yet, or its fields be guarded by the caller.
func (b *Backend) save(r *record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.writeRecord(string(r.Pod.UID), data)
}

// writeRecord writes the record of pod uid atomically, so a crash leaves the previous record or the new one.
// It never makes the pod's directory (Create does): a pod deleted meanwhile stays deleted. The caller holds
// the pod's lock (podLocks), so that writes of one pod's record land in the order they were made.
func (b *Backend) writeRecord(uid string, data []byte) error {
	dir := b.podDir(uid)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("cannot record the pod: its directory %s is gone (the pod was deleted): %w", dir, err)
	}
	tmp := filepath.Join(dir, recordFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("cannot record the pod in %s: %w", dir, err)
	}
	return os.Rename(tmp, filepath.Join(dir, recordFile))
}

// loadRecords reads every pod record of the data directory.
func (b *Backend) loadRecords() (map[string]*record, error) {
	out := map[string]*record{}
	entries, err := os.ReadDir(b.podsDir())
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the pod records in %s: %w", b.podsDir(), err)
	}
	for _, e := range entries {
		path := filepath.Join(b.podsDir(), e.Name(), recordFile)
		data, err := os.ReadFile(path)
		if err != nil {
			if !os.IsNotExist(err) {
				b.log.Warn("cannot read a pod record", "path", path, "err", err)
			}
			continue
		}
		var r record
		if err := json.Unmarshal(data, &r); err != nil || r.Pod == nil {
			b.log.Warn("ignoring an unreadable pod record", "path", path, "err", err)
			continue
		}
		out[string(r.Pod.UID)] = &r
	}
	return out, nil
}
