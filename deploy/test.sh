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
# One package at a time would be slow; two at once fit the 2-core machines this runs on.
go test -count=1 -p 2 -timeout 40m "$@" ./...
