# Convenience targets; the README's two commands work without make too.
GO ?= go

.PHONY: build image run test lab lab-status lab-down bench fuzz generate fmt vet clean

# Static binaries: the shim runs inside any image (busybox, alpine), and the rest need no libc either.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

build: ## every binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

IMAGE ?= interlink-dispatcher
image: ## the container image IMAGE:VERSION and IMAGE:latest, with the local Docker Engine, from nothing but this tree
	IMAGE=$(IMAGE) VERSION=$(VERSION) COMMIT=$(COMMIT) bash deploy/image/build.sh

run: ## lab up, build, run the dispatcher with config.yaml
	bash deploy/run.sh

test: ## lab up, then every test
	bash deploy/test.sh

lab:
	bash deploy/lab/lab.sh up

lab-status:
	bash deploy/lab/lab.sh status

lab-down:
	bash deploy/lab/lab.sh down

# The lab benchmarks (dispatcher/faults, build tag bench): the real dispatcher over each real backend and the
# raw engine beside it, at each N of BENCH_N, then the dispatcher alone with 10,000 journaled pods; one table
# per backend with the targets marked. Needs the lab (make lab). BENCH_BACKENDS, BENCH_POLL,
# BENCH_JOURNAL_PODS and BENCH_JOURNAL_CALLS narrow or widen it.
BENCH_N ?= 100 400
bench: ## lab benchmarks of every backend against its raw engine, with figures and targets
	BENCH_N="$(BENCH_N)" $(GO) test -tags bench -run '^$$' -bench '^(BenchmarkLab|BenchmarkDispatcherJournal)$$' \
		-benchtime 1x -timeout 4h ./dispatcher/faults/

FUZZTIME ?= 2m
fuzz: ## every fuzz target for FUZZTIME each (CI runs them 10s each in deploy/test.sh)
	FUZZTIME=$(FUZZTIME) bash deploy/fuzz.sh

generate: ## regenerate the gRPC code from shared/backend/proto
	$(GO) generate ./shared/backend/...

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin/
