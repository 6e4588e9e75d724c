package slurm

import (
	"encoding/json"
	"errors"
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
	submittingFile  = "submitting"   // exists while sbatch runs, so a crash then is noticed
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

func writeRecord(dir string, r *podRecord) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, recordFile), data, 0o644)
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
