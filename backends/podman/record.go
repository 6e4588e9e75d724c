package podman

import (
	"fmt"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/records"
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

// store holds one record.json per pod directory.
func (b *Backend) store() records.Store {
	return records.Store{Root: b.podsDir(), File: recordFile, Mode: 0o600}
}

// save writes r atomically and durably, so a crash leaves the previous record or the new one. It never makes
// the pod's directory (Create does): a pod deleted meanwhile stays deleted.
func (b *Backend) save(r *record) error {
	if err := b.store().Save(string(r.Pod.UID), r); err != nil {
		return fmt.Errorf("cannot record the pod: %w", err)
	}
	return nil
}

// writeRecord writes the record of pod uid, encoded by the caller (who encodes it under b.mu and holds the
// pod's lock, so that writes of one pod's record land in the order they were made), as save does.
func (b *Backend) writeRecord(uid string, data []byte) error {
	if err := b.store().SaveRaw(uid, data); err != nil {
		return fmt.Errorf("cannot record the pod: %w", err)
	}
	return nil
}

// loadRecords reads every pod record of the data directory; an unreadable one is logged and skipped.
func (b *Backend) loadRecords() (map[string]*record, error) {
	out := map[string]*record{}
	s := b.store()
	uids, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, uid := range uids {
		var r record
		if err := s.Load(uid, &r); err != nil {
			b.log.Warn("ignoring an unreadable pod record", "path", s.Path(uid), "err", err)
			continue
		}
		if r.Pod == nil {
			b.log.Warn("ignoring a pod record without its pod", "path", s.Path(uid))
			continue
		}
		out[string(r.Pod.UID)] = &r
	}
	return out, nil
}
