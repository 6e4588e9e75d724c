package slurm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/records"
)

// Files of a pod directory (<root>/<pod uid>/).
const (
	recordFile      = "record.json"  // the podRecord
	scriptFile      = "job.sh"       // the job script given to sbatch
	jobOutFile      = "job.out"      // the job's own output
	jobStartedFile  = "job.started"  // "<time> <job id>", written by the job when it starts
	jobFinishedFile = "job.finished" // "<time> <exit code>", written by the job when it ends normally
	jobStateFile    = "job.state"    // the job's final SLURM state, recorded from squeue (jobState JSON)
	terminatingFile = "terminating"  // made by the job when it is signalled to stop
	evictedFile     = "evicted"      // "<time> <message>": the job evicted the pod (an emptyDir over its sizeLimit)
	podEnvFile      = "pod.env"      // POD_IP for the job's shell
	preExecFile     = "pre-exec.sh"  // the pod's own shell text run before the containers
	containersDir   = "containers"   // one directory per container
	shimDir         = "shim"         // the shim's state directory of each container (spec.json, ready, exit, reason)
	pinsDir         = "subpaths"     // the containers' pinned subPaths (pod.PinDir)
)

// podRecord is what the backend records about a pod in its directory; List, Status and Delete read it.
type podRecord struct {
	UID            string    `json:"uid"`
	Namespace      string    `json:"namespace"`
	Name           string    `json:"name"`
	JobID          string    `json:"jobID,omitempty"`
	Runtime        string    `json:"runtime"`
	Created        time.Time `json:"created"`
	InitContainers []string  `json:"initContainers"`
	Containers     []string  `json:"containers"`
}

// jobState is a job's final state as squeue last showed it, kept because squeue forgets finished jobs.
type jobState struct {
	State    string    `json:"state"`
	Reason   string    `json:"reason"`
	ExitCode int64     `json:"exitCode"`
	Ended    time.Time `json:"ended"`
}

func (b *Backend) podDir(uid string) string { return filepath.Join(b.cfg.Root, uid) }

// readRecord reads a pod's record; a missing directory or record is fs.ErrNotExist.
func readRecord(dir string) (*podRecord, error) {
	var r podRecord
	if err := records.ReadJSON(filepath.Join(dir, recordFile), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// writeRecord writes the pod's record durably (records.WriteFile).
func writeRecord(dir string, r *podRecord) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, recordFile), data, 0o644)
}

// writeDraftRecord writes the record a Create makes before sbatch (no job id yet: "a submission is under way,
// or was cut short") atomically, so that a status reading it meanwhile never sees a part, but without
// syncing (records.ReplaceFile): the record with the job id, written after sbatch, is the one synced.
func writeDraftRecord(dir string, r *podRecord) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return records.ReplaceFile(filepath.Join(dir, recordFile), data, 0o644)
}

// writeJobFile writes a file of a pod's new directory that nothing reads before the job starts, which is after
// sbatch: in place (no reader can see a part of it) and not synced. Syncing each (two fsyncs apiece, as
// records.WriteFile does) was most of a create's own time when the disk is busy; the job reads these files
// from the page cache or the shared filesystem, and sbatch has sent the script itself to slurmctld. mode is
// applied whatever the umask, as records.WriteFile does.
func writeJobFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic writes a file of a pod's directory through shared/records, so that readers (the job on a
// compute node, a restarted backend) never see a part, and a crash never loses a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return records.WriteFile(path, data, mode)
}

func readJobState(dir string) (*jobState, error) {
	var s jobState
	if err := records.ReadJSON(filepath.Join(dir, jobStateFile), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func writeJobState(dir string, s *jobState) error {
	return records.WriteJSON(filepath.Join(dir, jobStateFile), s, 0o644)
}

// unixTime reads "1700000000.123456" (the job's timestamps).
func unixTime(s string) (time.Time, bool) {
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nsec int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if nsec, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, false
		}
	}
	return time.Unix(n, nsec), true
}

// readWords returns the blank-separated words of a small file, nil when it does not exist.
func readWords(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(data))
}

// fileTime returns the modification time of path, and whether it exists.
func fileTime(path string) (time.Time, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
