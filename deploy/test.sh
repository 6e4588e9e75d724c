#!/usr/bin/env bash
# The project's test command (README, .ci/run): brings the lab up, then runs every test against it.
# Under CI=true a test that needs an engine fails when the engine is missing; elsewhere it skips.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
if [ "$(id -u)" = 0 ]; then
	bash deploy/lab/lab.sh up
else
	echo "[test] not root: using the lab as it is (engine tests skip unless CI=true)"
	bash deploy/lab/lab.sh status || true
fi
echo "[test] go vet"
go vet ./...
echo "[test] go test"
# -v so that the log shows each test that ran (and none skipped under CI=true); the RUN/PAUSE/CONT chatter is
# dropped. The engine tests mostly wait on containers and jobs (a run with the lab up uses 1.5-1.7 min of CPU in
# 2.5 min on the machines this runs on), so they run in parallel: four packages at once and six tests at once within
# each (at eight, Podman grew slow enough to break timing-sensitive pods of the community test set). The SLURM
# package, whose tests wait on the scheduler (a time limit, a job's purge), runs beside the others with twelve
# at once; the lab's node takes eight jobs per real CPU at a time (sixteen at least) and SLURM queues the rest.
# Its log follows the others'.
# The fault-injection suite (dispatcher/faults) restarts dockerd, the Podman service and slurmctld, which would
# break any test using them meanwhile: it runs on its own once the others are done.
filter() { grep -vE '^\s*=== (RUN|PAUSE|CONT|NAME)'; }
slurm=./backends/slurm/...
faults=./dispatcher/faults
others=$(go list ./... | grep -v '/backends/slurm' | grep -v '/dispatcher/faults$')
log=$(mktemp)
slurm_log=$(mktemp)
trap 'rm -f "$log" "$slurm_log"' EXIT
set +e
go test -v -count=1 -parallel 12 -timeout 40m "$@" $slurm >"$slurm_log" 2>&1 &
slurm_pid=$!
# shellcheck disable=SC2086 # one package path per word
go test -v -count=1 -p 4 -parallel 6 -timeout 40m "$@" $others 2>&1 | tee "$log" | filter
rc=${PIPESTATUS[0]}
wait "$slurm_pid"
slurm_rc=$?
filter <"$slurm_log"
cat "$slurm_log" >>"$log"
echo "[test] fault injection, alone ($faults)"
# Its engine restarts run one after another, then its other tests four at a time.
INTERLINK_FAULTS_RESTART_ENGINES=1 go test -v -count=1 -parallel 4 -timeout 20m "$@" $faults 2>&1 | tee -a "$log" | filter
faults_rc=${PIPESTATUS[0]}
set -e
[ "$rc" != 0 ] || rc=$slurm_rc
[ "$rc" != 0 ] || rc=$faults_rc
# Every fuzz target for a short while (FUZZTIME, 10s each; about 3 minutes in all here), after the tests so
# that its CPU does not slow their timing-sensitive pods; a run restricted by arguments skips it.
fuzz_failed=0
if [ $# = 0 ]; then
	echo "[test] fuzz"
	fuzz_log=$(mktemp)
	fuzz_rc=0
	bash deploy/fuzz.sh 2>&1 | tee "$fuzz_log" || fuzz_rc=$?
	[ "$rc" != 0 ] || rc=$fuzz_rc
	# A failing target counts as a failed test in the closing line.
	fuzz_failed=$(grep -cE ' FAILED after ' "$fuzz_log" || true)
	rm -f "$fuzz_log"
fi
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(( $(grep -cE '^\s*--- FAIL' "$log" || true) + fuzz_failed ))
skipped=$(grep -cE '^\s*--- SKIP' "$log" || true)
if [ "$failed" != 0 ]; then
	# What each failing test said, gathered from the interleaved -v output (go test names the test whose
	# output follows whenever it changes), so that the failures' reasons close the log.
	echo "[test] what the failing tests said:"
	awk '
		/^=== (RUN|CONT|NAME|PAUSE) / { cur = $3; said = 0; next }
		/^[[:space:]]*--- (FAIL|PASS|SKIP): / { if ($2 == "FAIL:") failed[$3] = 1; said = 0; next }
		/^[[:space:]]+[^[:space:]]+\.go:[0-9]+: / { out[cur] = out[cur] $0 "\n"; said = 1; next }
		said && /^[[:space:]]/ { out[cur] = out[cur] $0 "\n"; next }
		{ said = 0 }
		END { for (t in failed) if (t in out) printf "%s:\n%s", t, out[t] }
	' "$log"
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$rc"
