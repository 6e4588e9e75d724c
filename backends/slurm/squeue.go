package slurm

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// squeueJob is the part of one job of `squeue --json` (OpenAPI v0.0.38, SLURM 22.05) the backend reads.
type squeueJob struct {
	JobID            int64    `json:"job_id"`
	Name             string   `json:"name"`
	JobState         string   `json:"job_state"`
	StateReason      string   `json:"state_reason"`
	StateDescription string   `json:"state_description"`
	ExitCode         *int64   `json:"exit_code"`
	StartTime        int64    `json:"start_time"`
	EndTime          int64    `json:"end_time"`
	SubmitTime       int64    `json:"submit_time"`
	Nodes            string   `json:"nodes"`
	WorkDir          string   `json:"current_working_directory"`
	Partition        string   `json:"partition"`
	Flags            []string `json:"flags"`
}

// squeueOutput is the whole answer of `squeue --json`.
type squeueOutput struct {
	Errors []json.RawMessage `json:"errors"`
	Jobs   []squeueJob       `json:"jobs"`
}

// parseSqueue reads `squeue --json` output into jobs by id. Newer SLURM versions wrap some numbers as
// {"set": true, "number": N} and states as lists; both shapes are read.
func parseSqueue(data []byte) (map[string]*squeueJob, error) {
	// One pass into the few fields read is the fast path (the output lists the whole queue); the slower
	// job-by-job reading is for the shapes of later SLURM versions.
	var out squeueOutput
	if err := json.Unmarshal(data, &out); err == nil {
		jobs := make(map[string]*squeueJob, len(out.Jobs))
		for i := range out.Jobs {
			jobs[strconv.FormatInt(out.Jobs[i].JobID, 10)] = &out.Jobs[i]
		}
		return jobs, nil
	}
	var raw struct {
		Errors []json.RawMessage `json:"errors"`
		Jobs   []json.RawMessage `json:"jobs"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("squeue --json printed something that is not its JSON: %w", err)
	}
	jobs := make(map[string]*squeueJob, len(raw.Jobs))
	for _, r := range raw.Jobs {
		var j squeueJob
		if err := json.Unmarshal(r, &j); err != nil {
			if err := decodeNewerJob(r, &j); err != nil {
				return nil, fmt.Errorf("cannot read a job of squeue --json: %w", err)
			}
		}
		jobs[strconv.FormatInt(j.JobID, 10)] = &j
	}
	return jobs, nil
}

// decodeNewerJob reads the shapes of later OpenAPI versions (v0.0.39 on), where numbers may be objects and
// job_state a list.
func decodeNewerJob(r json.RawMessage, j *squeueJob) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r, &m); err != nil {
		return err
	}
	num := func(key string) int64 {
		var n int64
		if json.Unmarshal(m[key], &n) == nil {
			return n
		}
		var wrapped struct {
			Number int64 `json:"number"`
		}
		_ = json.Unmarshal(m[key], &wrapped)
		return wrapped.Number
	}
	str := func(key string) string {
		var s string
		_ = json.Unmarshal(m[key], &s)
		return s
	}
	j.JobID = num("job_id")
	j.Name = str("name")
	j.StateReason = str("state_reason")
	j.StateDescription = str("state_description")
	j.StartTime, j.EndTime, j.SubmitTime = num("start_time"), num("end_time"), num("submit_time")
	j.Nodes = str("nodes")
	j.WorkDir = str("current_working_directory")
	if err := json.Unmarshal(m["job_state"], &j.JobState); err != nil {
		var states []string
		if err := json.Unmarshal(m["job_state"], &states); err != nil || len(states) == 0 {
			return fmt.Errorf("job %d has no readable job_state", j.JobID)
		}
		j.JobState = states[0]
		j.Flags = append(j.Flags, states[1:]...)
	}
	return nil
}

// Job state classes.
const (
	jobPending = iota
	jobActive
	jobOver
)

// stateClass says whether a SLURM job state is still waiting to run, running, or over.
func stateClass(state string) int {
	switch strings.ToUpper(state) {
	case "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD":
		return jobPending
	case "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
		"BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED":
		return jobOver
	}
	return jobActive // RUNNING, CONFIGURING, COMPLETING, SUSPENDED, STOPPED, SIGNALING, RESIZING...
}

// querySqueue runs squeue once and returns every job it lists by id. SLURM 22.05 ignores squeue's filters
// (--jobs, --name, --user) together with --json, so the one call lists the whole queue and the jobs of the
// batch are picked out of it; a site can narrow it with extra words in the squeue command line.
func (b *Backend) querySqueue(ctx context.Context) (map[string]*squeueJob, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(b.cfg.CommandTimeout))
	defer cancel()
	b.metrics.squeueCalls.Inc()
	b.metrics.engineCalls.WithLabelValues("squeue").Inc()
	res, err := b.cfg.squeue.run(ctx, "", "--json")
	b.metrics.squeueSeconds.Observe(res.Duration.Seconds())
	if err != nil {
		b.metrics.squeueErrors.Inc()
		return nil, err
	}
	return parseSqueue(res.Stdout)
}

// queueJobs returns the queue from a squeue run shared with every other caller (see queueView), fresh
// enough for the jobs given: one the backend has just submitted or cancelled is never judged from a run that
// began before.
func (b *Backend) queueJobs(ctx context.Context, jobIDs ...string) (map[string]*squeueJob, error) {
	jobs, shared, err := b.queue.jobs(ctx, jobIDs...)
	if shared {
		b.metrics.squeueShared.Inc()
	}
	return jobs, err
}
