#!/usr/bin/env bash
# Brings the lab up, builds every binary into bin/ and runs the dispatcher with config.yaml in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
bash deploy/lab/lab.sh up
echo "[run] building bin/"
go build -o bin/ ./cmd/...
echo "[run] starting bin/interlink-dispatcher --config config.yaml"
exec ./bin/interlink-dispatcher --config config.yaml "$@"
