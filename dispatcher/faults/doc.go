// Package faults is the dispatcher's fault-injection suite: tests only, run against the real engines of the
// test lab (deploy/lab/lab.sh). Each test starts the interlink-dispatcher command with the real backend
// binaries, injects one fault — a backend SIGKILLed during a storm of creates, the dispatcher SIGKILLed with
// pods running, an engine (dockerd, the Podman service, slurmctld) restarted under running pods, concurrent
// deletes, concurrent duplicate creates — and then asks the engines themselves (the Docker API, the libpod
// API, squeue) and the pod directories under the data directory whether any pod was lost, duplicated or
// orphaned.
//
// Every test uses its own dispatcher instance name, which the backends put on everything they make, so that
// its assertions and its clean-up see only its own objects. The engine restarts disturb any other test using
// the engines: deploy/test.sh runs this package on its own, after every other package.
//
// The benchmarks of `make bench` live here too, behind the build tag bench (so `go test ./...` never runs
// them), since they drive the same dispatcher and backend binaries with the same harness.
package faults
