#!/usr/bin/env bash
# Brings the lab's engines up, builds every binary into bin/ and runs the dispatcher with config.yaml in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
# The engines only: this dispatcher needs no Kubernetes (`lab.sh up` adds the lab cluster; README "With Kubernetes").
bash deploy/lab/lab.sh up --no-kubernetes
echo "[run] building bin/"
# Static binaries: the shim runs inside any image (busybox, alpine), the others need no libc either.
CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$(git describe --tags --always --dirty 2>/dev/null || echo dev) -X main.commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)" -o bin/ ./cmd/...
echo "[run] starting bin/interlink-dispatcher --config config.yaml"
exec ./bin/interlink-dispatcher --config config.yaml "$@"
