# Convenience targets; the README's two commands work without make too.
GO ?= go

.PHONY: build run test lab lab-status lab-down bench generate fmt vet clean

build: ## every binary into bin/
	$(GO) build -o bin/ ./cmd/...

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

bench: ## benchmarks, with figures
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

generate: ## regenerate the gRPC code from shared/backend/proto
	$(GO) generate ./shared/backend/...

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin/
