package slurm

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// jobScriptHelpers is the fixed part of every job script: shell functions that run containers and record
// what happens to them in the pod's directory, so that status and logs survive the job leaving the queue.
// It holds no pod data.
//
// Per container, containers/<name>/ holds:
//
//	state     one line: "running <started> <restarts>", "waiting <reason> <restarts>" or
//	          "terminated <exit code> <started> <finished> <restarts> <reason|->" (times in Unix seconds)
//	last      the previous run after a restart: "<exit code> <started> <finished> <reason|->"
//	message   why a waiting or terminated state is what it is (e.g. the image pull's error)
//	log       the container's output, each line as "<unix time> <text>", written as it is produced; a
//	          last line the output ended without a newline as "<unix time>~ <text>"
//	log.prev  the output of the previous run
//
// and the job writes job.started ("<time> <job id>") and job.finished ("<time> <exit code>").
const jobScriptHelpers = `if [ -n "${EPOCHREALTIME:-}" ]; then
  now() { NOW=${EPOCHREALTIME/,/.}; }
else
  now() { NOW=$(date +%s.%N); }
fi

# put FILE TEXT replaces FILE at once, so that the backend never reads half of it.
put() { printf '%s\n' "$2" > "$1.tmp" && mv -f "$1.tmp" "$1"; }

# stamp writes every line it reads with the time it read it, and marks with "~" after the time a last line
# the output ended without its newline (the log then gives it back without one). It ignores SIGTERM so that
# the last lines of a stopping container are still written; it ends when the container's output closes.
# Lines matching NOISE are the runtime's own diagnostics, not the container's: they go to the job's output.
stamp() {
  trap '' TERM INT
  local line mark
  while :; do
    if IFS= read -r line; then mark=; elif [ -n "$line" ]; then mark='~'; else break; fi
    if [ -n "$NOISE" ] && [[ $line =~ $NOISE ]]; then
      printf '%s\n' "$line" >&2
    else
      now
      printf '%s%s %s\n' "$NOW" "$mark" "$line"
    fi
    if [ -n "$mark" ]; then break; fi
  done
}

# pause SECONDS sleeps, and returns early when the job is being stopped.
pause() {
  sleep "$1" &
  wait $!
  kill $! 2>/dev/null
  return 0
}

# next_backoff doubles the back-off, up to its maximum.
next_backoff() {
  backoff=$((backoff * 2))
  if [ "$backoff" -gt "$MAX_RESTART_BACKOFF" ]; then backoff=$MAX_RESTART_BACKOFF; fi
}

# pull NAME FN makes the container's image available, retrying a failed pull; PULL_REASON says why it gave up.
pull() {
  local d="containers/$1" attempt=1 backoff=$RESTART_BACKOFF rc
  while :; do
    "$2_pull" > "$d/pull.out" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then return 0; fi
    put "$d/message" "$(tail -c 4000 "$d/pull.out")"
    if [ "$rc" -eq 3 ]; then PULL_REASON=ErrImageNeverPull; return 1; fi
    PULL_REASON=ErrImagePull
    if [ "$attempt" -ge "$PULL_RETRIES" ] || [ -n "$TERMINATING" ]; then return 1; fi
    put "$d/state" "waiting ErrImagePull 0"
    pause "$backoff"
    next_backoff
    attempt=$((attempt + 1))
  done
}

# run_ctr NAME POLICY FN runs one container until it ends for good, restarting it as POLICY says (Never,
# OnFailure, Always) after a doubling back-off. It runs in a subshell of its own.
run_ctr() {
  local name=$1 policy=$2 fn=$3 d="containers/$1"
  local restarts=0 backoff=$RESTART_BACKOFF code started reason
  trap 'TERMINATING=1' TERM INT
  if [ -n "$TERMINATING" ]; then return 0; fi
  if ! pull "$name" "$fn"; then
    now
    put "$d/state" "terminated 1 $NOW $NOW 0 $PULL_REASON"
    return 1
  fi
  while :; do
    # Every start binds the container's subPaths anew, resolved now: one that an init container or an
    # earlier run replaced by a symbolic link out of its volume is refused (see interlink-shim pin).
    if ! "${fn}_pin" > "$d/pin.out" 2>&1; then
      now
      put "$d/message" "$(tail -c 4000 "$d/pin.out")"
      if [ -n "$TERMINATING" ]; then
        put "$d/state" "terminated 1 $NOW $NOW $restarts CreateContainerError"
        return 1
      fi
      put "$d/state" "waiting CreateContainerError $restarts"
      pause "$backoff"
      next_backoff
      # A stop that came during the pause ends the container here: pinning again could start it after its
      # stop was handled, with no one to stop it and its pin outliving the job.
      if [ -n "$TERMINATING" ]; then
        now
        put "$d/state" "terminated 1 $NOW $NOW $restarts CreateContainerError"
        return 1
      fi
      continue
    fi
    rm -f "$d/message"
    now
    started=$NOW
    put "$d/state" "running $started $restarts"
    "${fn}_run" < /dev/null 2>&1 | stamp >> "$d/log"
    code=${PIPESTATUS[0]}
    now
    reason=$("${fn}_after" "$code")
    if [ -z "$TERMINATING" ] && { [ "$policy" = Always ] || { [ "$policy" = OnFailure ] && [ "$code" -ne 0 ]; }; }; then
      put "$d/last" "$code $started $NOW ${reason:--}"
      put "$d/state" "waiting CrashLoopBackOff $restarts"
      pause "$backoff"
      next_backoff
      if [ -z "$TERMINATING" ]; then
        restarts=$((restarts + 1))
        mv -f "$d/log" "$d/log.prev" 2>/dev/null
        continue
      fi
    fi
    put "$d/state" "terminated $code $started $NOW $restarts ${reason:--}"
    return "$code"
  done
}

# json_inner JSON prints a JSON array of strings without its brackets ("" for null or []).
json_inner() {
  local a=$1
  if [ "$a" = null ]; then a='[]'; fi
  a=${a#\[}
  printf '%s' "${a%\]}"
}

# write_argv DIR TAIL A B writes the shim's DIR/spec.json: the argv joining the JSON arrays A and B (the
# image's ENTRYPOINT and the pod's args or the image's CMD), then the rest of the spec from the file TAIL.
write_argv() {
  local a b
  a=$(json_inner "$3")
  b=$(json_inner "$4")
  if [ -n "$a" ] && [ -n "$b" ]; then a="$a,"; fi
  { printf '{"argv":[%s%s]' "$a" "$b" && cat "$2"; } > "$1/spec.json.tmp" && mv -f "$1/spec.json.tmp" "$1/spec.json"
}

# watch_disk [DIR LIMIT MESSAGE]... evicts the pod, as the kubelet's eviction manager does, when an emptyDir
# on disk holds more than its sizeLimit (in bytes, measured as du does every USAGE_INTERVAL seconds): it
# writes evicted ("<time> <message>") and signals the whole job, which stops every container.
watch_disk() {
  local i j k used
  while sleep "$USAGE_INTERVAL"; do
    for ((i = 1; i < $#; i += 3)); do
      j=$((i + 1))
      k=$((i + 2))
      used=$(du -s -B1 -- "${!i}" 2>/dev/null | cut -f1)
      if [ -n "$used" ] && [ "$used" -gt "${!j}" ]; then
        now
        put evicted "$NOW ${!k}"
        kill -TERM 0
        return
      fi
    done
  done
}

# wait_pid PID waits for a child to end, even when a signal interrupts the wait.
wait_pid() {
  local rc
  while :; do
    wait "$1"
    rc=$?
    if [ "$rc" -le 128 ] || ! kill -0 "$1" 2>/dev/null; then return 0; fi
  done
}

# exit_code NAME prints the exit code of a terminated container, nothing otherwise.
exit_code() {
  local kind code rest
  read -r kind code rest < "containers/$1/state" 2>/dev/null
  if [ "$kind" = terminated ]; then printf '%s' "$code"; fi
}

TERMINATING=
WATCHER=
PIDS=()
STOPS=()
on_term() {
  TERMINATING=1
  : > terminating
  local fn
  for fn in "${STOPS[@]}"; do "${fn}_stop" & done
}
trap on_term TERM INT

# run_init NAME POLICY FN runs an init container to its end; a failure ends the job.
run_init() {
  if [ -n "$TERMINATING" ]; then finish; fi
  STOPS=("$3")
  run_ctr "$@" &
  wait_pid $!
  STOPS=()
  if [ "$(exit_code "$1")" != 0 ]; then finish; fi
}

# start_ctr NAME POLICY FN starts a regular container; they all run together.
start_ctr() {
  if [ -n "$TERMINATING" ]; then return; fi
  run_ctr "$@" &
  PIDS+=($!)
  STOPS+=("$3")
}

# finish waits for the regular containers, records the end of the job and exits with the highest exit code
# of its containers.
finish() {
  local pid f code highest=0
  for pid in "${PIDS[@]}"; do wait_pid "$pid"; done
  if [ -n "$WATCHER" ]; then kill "$WATCHER" 2>/dev/null; fi
  for f in containers/*/state; do
    code=$(exit_code "$(basename "$(dirname "$f")")")
    if [ -n "$code" ] && [ "$code" -gt "$highest" ]; then highest=$code; fi
  done
  if [ -d subpaths ]; then "$SHIM" unpin-all "$POD_DIR/subpaths" >&2; fi
  now
  put job.finished "$NOW $highest"
  exit "$highest"
}
`

// scriptContainer is one container as the script runs it.
type scriptContainer struct {
	Name   string
	Init   bool
	Policy string // Never, OnFailure or Always
	Script containerScript
	// Pin binds the container's subPaths before each of its starts (see pinText); "" when it has none.
	Pin string
}

// jobScript holds everything the job script is made of.
type jobScript struct {
	Bash        string
	Shim        string // the interlink-shim binary on the compute node
	Dir         string
	UID         string
	Runtime     string
	Flags       []sbatchFlag
	Grace       time.Duration
	KillWait    time.Duration // SLURM's KillWait, which bounds Grace
	Backoff     time.Duration
	MaxBackoff  time.Duration
	PullRetries int
	Noise       string // a bash regular expression of the runtime's own diagnostics (see stamp)
	HasPodEnv   bool
	HasPreExec  bool
	Containers  []scriptContainer
	// Limited are the emptyDirs on disk with a sizeLimit, which the job watches (see watch_disk).
	Limited []limitedDir
}

// limitedDir is an emptyDir the job evicts the pod for when it grows over Limit bytes.
type limitedDir struct {
	Path    string
	Limit   int64
	Message string // the eviction's message, in the kubelet's words
}

// render writes the job script. The #SBATCH lines carry the job's options, each word quoted the way sbatch's
// directive parser reads quotes; the body holds only fixed text and quoted words, and reads everything else
// from files in the pod's directory.
func (j *jobScript) render() string {
	var b strings.Builder
	b.WriteString("#!" + j.Bash + "\n")
	fmt.Fprintf(&b, "#SBATCH --output=%s\n", shellQuote(j.Dir+"/job.out"))
	fmt.Fprintf(&b, "#SBATCH --chdir=%s\n", shellQuote(j.Dir))
	for _, f := range j.Flags {
		fmt.Fprintf(&b, "#SBATCH %s\n", shellQuote(f.String()))
	}
	fmt.Fprintf(&b, "#\n# The job of pod UID %s, written by the interlink-dispatcher SLURM backend (runtime %s).\n\n", j.UID, j.Runtime)
	fmt.Fprintf(&b, "POD_DIR=%s\n", shellQuote(j.Dir))
	fmt.Fprintf(&b, "SHIM=%s\n", shellQuote(j.Shim))
	grace := j.Grace
	if j.KillWait > 0 && grace > j.KillWait-2*time.Second {
		// SLURM kills every process of a stopping job KillWait after its SIGTERM: a container still stopping
		// then would outlive the job, so its stop must end before.
		grace = max(j.KillWait-2*time.Second, 0)
	}
	fmt.Fprintf(&b, "GRACE=%d\n", int64(grace.Round(time.Second)/time.Second))
	fmt.Fprintf(&b, "RESTART_BACKOFF=%d\n", max(1, int64(j.Backoff.Round(time.Second)/time.Second)))
	fmt.Fprintf(&b, "MAX_RESTART_BACKOFF=%d\n", max(1, int64(j.MaxBackoff.Round(time.Second)/time.Second)))
	fmt.Fprintf(&b, "PULL_RETRIES=%d\n", j.PullRetries)
	fmt.Fprintf(&b, "NOISE=%s\n", shellQuote(j.Noise))
	fmt.Fprintf(&b, "USAGE_INTERVAL=%d\n", int64(pod.UsageInterval/time.Second))
	b.WriteString("cd \"$POD_DIR\" || exit 1\n\n")
	b.WriteString(jobScriptHelpers)
	for i, c := range j.Containers {
		fn := "c" + strconv.Itoa(i)
		fmt.Fprintf(&b, "\n# %s container %s\n", map[bool]string{true: "init", false: "regular"}[c.Init], c.Name)
		pin := c.Pin
		if pin == "" {
			pin = ":"
		}
		fmt.Fprintf(&b, "%s_pin() {\n  %s\n}\n", fn, pin)
		fmt.Fprintf(&b, "%s_pull() {\n  %s\n}\n", fn, c.Script.Pull)
		fmt.Fprintf(&b, "%s_run() {\n  %s\n}\n", fn, c.Script.Run)
		fmt.Fprintf(&b, "%s_after() {\n  %s\n}\n", fn, c.Script.After)
		fmt.Fprintf(&b, "%s_stop() {\n  %s\n}\n", fn, c.Script.Stop)
	}
	// A requeued job starts over: what its earlier run recorded no longer describes the pod.
	b.WriteString("\nrm -f terminating evicted job.finished containers/*/state containers/*/last containers/*/message\n")
	b.WriteString("now\nput job.started \"$NOW ${SLURM_JOB_ID:-}\"\n")
	if j.HasPodEnv {
		b.WriteString("set -a\n. ./pod.env\nset +a\n")
	}
	if j.HasPreExec {
		// The pod's own shell text (interlink.eu/wstunnel-client-commands, slurm-job.vk.io/pre-exec) runs in
		// the job's shell before any container, as the reference plugin runs it.
		b.WriteString(". ./pre-exec.sh\n")
	}
	if len(j.Limited) > 0 {
		words := []string{"watch_disk"}
		for _, l := range j.Limited {
			words = append(words, l.Path, strconv.FormatInt(l.Limit, 10), l.Message)
		}
		b.WriteString(shellJoin(words) + " &\nWATCHER=$!\n")
	}
	for i, c := range j.Containers {
		fn := "c" + strconv.Itoa(i)
		verb := "start_ctr"
		if c.Init {
			verb = "run_init"
		}
		fmt.Fprintf(&b, "%s %s %s %s\n", verb, c.Name, c.Policy, fn)
	}
	b.WriteString("finish\n")
	return b.String()
}
