package docker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/records"
)

// Files of a pod directory.
const (
	recordFile = "pod.json"   // the create request and the pod's remote id: present once the pod is recorded
	stateFile  = "state.json" // the failures met after Create answered, so that Status still shows them after a restart
)

// record is what Create persists about a pod. It holds the pod's secrets (as interLink sent them), so it is
// written 0600 inside the 0700 pod directory, beside the materialised secret volumes.
type record struct {
	Pod        *v1.Pod                        `json:"pod"`
	Containers []interlink.RetrievedContainer `json:"containers"`
	// RemoteID is the pause container's id; empty while Create has not finished (a crash then leaves a
	// half-made pod that recovery removes).
	RemoteID string    `json:"remoteID"`
	Created  time.Time `json:"created"`
}

// podState is the persisted part of a pod's status that the engine does not hold.
type podState struct {
	// Errors are the latest failure per container name (ErrImagePull, CreateContainerError...), for the
	// attempt that could not be started. A started attempt clears them.
	Errors map[string]containerError `json:"errors,omitempty"`
	// Evicted is set once the backend evicted the pod.
	Evicted *pod.Eviction `json:"evicted,omitempty"`
}

type containerError struct {
	Attempt int       `json:"attempt"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

func (b *Backend) podDir(uid string) string { return filepath.Join(b.dataDir, "pods", uid) }

func (b *Backend) readRecord(uid string) (*record, error) {
	var r record
	if err := readJSON(filepath.Join(b.podDir(uid), recordFile), &r); err != nil {
		return nil, err
	}
	if r.Pod == nil {
		return nil, fmt.Errorf("%s has no pod", filepath.Join(b.podDir(uid), recordFile))
	}
	return &r, nil
}

func (b *Backend) writeRecord(uid string, r *record) error {
	return writeJSON(filepath.Join(b.podDir(uid), recordFile), r)
}

func (b *Backend) readState(p *v1.Pod) podState {
	uid := string(p.UID)
	defer b.stateLocks.Lock(uid)()
	var s podState
	if err := readJSON(filepath.Join(b.podDir(uid), stateFile), &s); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.podLog(refOfPod(p)).Warn("cannot read a pod's state file; its past failures are not reported", "err", err)
	}
	return s
}

// setError records (or, with reason "", clears) the failure of a container's attempt.
func (b *Backend) setError(p *v1.Pod, container string, attempt int, reason, message string) {
	uid := string(p.UID)
	defer b.stateLocks.Lock(uid)()
	path := filepath.Join(b.podDir(uid), stateFile)
	var s podState
	_ = readJSON(path, &s)
	if reason == "" {
		if _, ok := s.Errors[container]; !ok {
			return
		}
		delete(s.Errors, container)
	} else {
		if s.Errors == nil {
			s.Errors = map[string]containerError{}
		}
		s.Errors[container] = containerError{Attempt: attempt, Reason: reason, Message: message, Time: time.Now()}
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return // the pod was deleted meanwhile
	}
	if err := writeJSON(path, &s); err != nil {
		b.podLog(refOfPod(p)).Error("cannot record a container failure; it will not survive a restart", "container", container, "err", err)
	}
}

// setEviction records the eviction of a pod.
func (b *Backend) setEviction(p *v1.Pod, ev *pod.Eviction) {
	uid := string(p.UID)
	defer b.stateLocks.Lock(uid)()
	path := filepath.Join(b.podDir(uid), stateFile)
	var s podState
	_ = readJSON(path, &s)
	s.Evicted = ev
	if err := writeJSON(path, &s); err != nil {
		b.podLog(refOfPod(p)).Error("cannot record a pod's eviction", "err", err)
	}
}

// readJSON and writeJSON read and write a file of a pod's directory through shared/records: written
// atomically and durably, and a damaged file is an error naming it.
func readJSON(path string, v any) error { return records.ReadJSON(path, v) }

func writeJSON(path string, v any) error { return records.WriteJSON(path, v, 0o600) }
