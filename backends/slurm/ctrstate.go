package slurm

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// ctrState is one container's state as its job recorded it in containers/<name>/ (see jobScriptHelpers).
type ctrState struct {
	Kind     string // "running", "waiting", "terminated", or "" when the job has not got to it
	Started  time.Time
	Reason   string // the waiting reason, or the terminated reason when the runtime gave one
	Term     pod.Termination
	Restarts int32
	Message  string
	Last     *pod.Termination // the previous run, after a restart
	// Shim is the shim's state while the container runs (its probes' verdicts), nil when unreadable.
	Shim *shim.State
}

func atoi32(s string) int32 {
	n, _ := strconv.ParseInt(s, 10, 32)
	return int32(n)
}

// readCtrState reads a container's state files (dir) and its shim's (shimDir). Missing or damaged files
// read as "not started". The job's state file is the one record of the exit code and times; the shim adds
// the probes' verdicts and, when it ended the command itself, the reason (StartError, Unhealthy,
// FailedPostStartHook) and message.
func readCtrState(dir, shimDir string) ctrState {
	var st ctrState
	w := readWords(filepath.Join(dir, "state"))
	if len(w) > 0 {
		switch {
		case w[0] == "running" && len(w) >= 3:
			st.Kind = "running"
			st.Started, _ = unixTime(w[1])
			st.Restarts = atoi32(w[2])
		case w[0] == "waiting" && len(w) >= 3:
			st.Kind = "waiting"
			st.Reason = w[1]
			st.Restarts = atoi32(w[2])
		case w[0] == "terminated" && len(w) >= 6:
			st.Kind = "terminated"
			st.Term.ExitCode = atoi32(w[1])
			st.Term.StartedAt, _ = unixTime(w[2])
			st.Term.FinishedAt, _ = unixTime(w[3])
			st.Restarts = atoi32(w[4])
			if w[5] != "-" {
				st.Term.Reason = w[5]
				st.Term.OOMKilled = w[5] == pod.ReasonOOMKilled
			}
		}
	}
	if lw := readWords(filepath.Join(dir, "last")); len(lw) >= 4 {
		t := pod.Termination{ExitCode: atoi32(lw[0])}
		t.StartedAt, _ = unixTime(lw[1])
		t.FinishedAt, _ = unixTime(lw[2])
		if lw[3] != "-" {
			t.Reason = lw[3]
			t.OOMKilled = lw[3] == pod.ReasonOOMKilled
		}
		st.Last = &t
	}
	if msg, err := os.ReadFile(filepath.Join(dir, "message")); err == nil {
		st.Message = strings.TrimSpace(string(msg))
	}
	if st.Kind == "terminated" && st.Term.Reason != "" && st.Term.Reason != pod.ReasonOOMKilled {
		st.Term.Message = st.Message
	}
	if shimDir == "" {
		return st
	}
	ss, err := shim.ReadState(shimDir)
	if err != nil {
		return st
	}
	switch st.Kind {
	case "running":
		st.Shim = &ss
	case "terminated":
		if ss.Exited && ss.Reason != "" && int32(ss.ExitCode) == st.Term.ExitCode {
			// The shim's reason wins over the runtime's guess (a 137 under a memory limit is not an OOM
			// kill when the shim killed the command for a failed probe).
			st.Term.Reason, st.Term.Message, st.Term.OOMKilled = ss.Reason, ss.Message, false
		}
	}
	return st
}
