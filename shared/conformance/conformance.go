// Package conformance is the harness every backend's tests run against their real engine: the same pod
// scenarios, judged the way interLink's virtual kubelet judges a plugin's answers (see Phase). A backend's
// test calls Run with its Backend (its Go value, or a Process from backend.Launch) and Options saying what it
// skips and how slow it is; a Go value is served over the contract's gRPC client and server in process, so
// that the scenarios reach it exactly as the dispatcher does, minus the process boundary:
//
//	func TestConformance(t *testing.T) {
//		labtest.RequireDocker(t)
//		b := newBackend(t) // the backend on the lab's engine
//		conformance.Run(t, b, conformance.Options{Parallel: true,
//			Skip: map[string]string{conformance.ScenarioLogsPrevious: "containers are never restarted"}})
//	}
//
// Each scenario is a subtest (conformance/<scenario>) with its own pods, each with a fresh UID and deleted
// when the scenario ends. The pod helpers are exported so that a backend's own tests build pods alike.
package conformance

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// Scenario names, as the subtests are named; Options.Skip takes them.
const (
	ScenarioSingleContainer  = "single-container"
	ScenarioFailingContainer = "failing-container"
	ScenarioInitContainers   = "init-containers"
	ScenarioInitFailure      = "init-failure"
	ScenarioMultiContainer   = "multi-container"
	ScenarioEnv              = "env"
	ScenarioTermination      = "termination-message"
	ScenarioConfigMap        = "volumes/configMap"
	ScenarioSecret           = "volumes/secret"
	ScenarioProjected        = "volumes/projected"
	ScenarioEmptyDir         = "volumes/emptyDir"
	ScenarioSubPath          = "volumes/subPath"
	ScenarioSubPathExpr      = "volumes/subPathExpr"
	ScenarioLogsAll          = "logs/all"
	ScenarioLogsTail         = "logs/tail"
	ScenarioLogsBytes        = "logs/bytes"
	ScenarioLogsTimestamps   = "logs/timestamps"
	ScenarioLogsSinceTime    = "logs/since-time"
	ScenarioLogsSinceSeconds = "logs/since-seconds"
	ScenarioLogsFollow       = "logs/follow"
	ScenarioLogsPrevious     = "logs/previous"
	ScenarioLogsUnknown      = "logs/unknown"
	ScenarioLogsNoContainer  = "logs/unknown-container"
	ScenarioDeleteRunning    = "delete-running"
	ScenarioDeleteFinished   = "delete-finished"
	ScenarioDeleteUnknown    = "delete-unknown"
	ScenarioDeleteByRemoteID = "delete-by-remote-id"
	ScenarioDeleteTwice      = "delete-twice"
	ScenarioVanished         = "vanished"
	ScenarioIdempotentCreate = "idempotent-create"
	ScenarioStatusUnknown    = "status-unknown"
	ScenarioStatusBatch      = "status-batch"
	ScenarioList             = "list"
	ScenarioInvalidPod       = "invalid-pod"
	ScenarioMalformedUID     = "malformed-uid"
	ScenarioCapacity         = "capacity"
	ScenarioMetrics          = "metrics"
)

// Options adapt the harness to a backend.
type Options struct {
	// Skip maps a scenario name (see the Scenario* constants) to the reason the backend skips it. A
	// scenario needing a feature the backend does not declare in its Capabilities is skipped anyway.
	Skip map[string]string
	// PodTimeout bounds the wait for a pod to reach a phase, image pull included (default 2 minutes).
	PodTimeout time.Duration
	// CallTimeout bounds one backend call (default 1 minute).
	CallTimeout time.Duration
	// GracePeriod is given to Delete (default 2 s).
	GracePeriod time.Duration
	// Parallel runs the scenarios in parallel with each other.
	Parallel bool
	// Vanish removes what the engine holds of a pod behind the backend's back, as an operator or an engine
	// fault would (its containers, its Podman pod, its SLURM job), given the pod's UID and the remote id its
	// Create returned; it returns once the engine no longer runs the pod. Without it the vanished scenario
	// is skipped.
	Vanish func(t testing.TB, uid, remoteID string)
}

func (o Options) withDefaults() Options {
	if o.PodTimeout == 0 {
		o.PodTimeout = 2 * time.Minute
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = time.Minute
	}
	if o.GracePeriod == 0 {
		o.GracePeriod = 2 * time.Second
	}
	return o
}

// harness runs the scenarios against one backend.
type harness struct {
	b    backend.Backend
	o    Options
	caps backend.Capabilities

	mu      sync.Mutex
	skipped map[string]string // scenario name → why it was skipped, for the summary
}

// skip skips the scenario name (the running subtest t), saying why, and notes it for the summary.
func (h *harness) skip(t *testing.T, name, reason string) {
	t.Helper()
	h.mu.Lock()
	if h.skipped == nil {
		h.skipped = map[string]string{}
	}
	h.skipped[name] = reason
	h.mu.Unlock()
	t.Skip(reason)
}

// summary is one log entry listing every skipped scenario and why, or saying that none was: a backend's
// test log then shows in one place what its conformance does not cover.
func (h *harness) summary(t *testing.T, what string, total int) {
	t.Log(h.summaryText(what, total))
}

func (h *harness) summaryText(what string, total int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.skipped) == 0 {
		return fmt.Sprintf("%s: all %d scenarios ran, none skipped", what, total)
	}
	names := make([]string, 0, len(h.skipped))
	for n := range h.skipped {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d scenarios skipped:", what, len(names), total)
	for _, n := range names {
		fmt.Fprintf(&b, "\n  %s: %s", n, h.skipped[n])
	}
	return b.String()
}

// request is NewCreateRequest for pod, fitted to the backend's capabilities (fitPod).
func (h *harness) request(pod *v1.Pod, objs Objects) backend.CreateRequest {
	fitPod(pod, h.caps)
	return NewCreateRequest(pod, objs)
}

// fitPod removes from pod what NewPod and ShellContainer set for the backends that honour it but no scenario
// tests, when the backend does not declare it: an explicit imagePullPolicy and the short grace period. So
// a backend is never asked for a feature it did not declare, and a scenario runs unless it needs one.
func fitPod(pod *v1.Pod, caps backend.Capabilities) {
	if !slices.Contains(caps.Features, backend.FeatureImagePullPolicy) {
		for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
			for i := range list {
				list[i].ImagePullPolicy = ""
			}
		}
	}
	if !slices.Contains(caps.Features, backend.FeatureTerminationGrace) {
		pod.Spec.TerminationGracePeriodSeconds = nil
	}
}

// Run runs every scenario against b, each as a subtest named after it, each pod with its own UID and
// deleted at the end of its scenario.
//
// b is reached as the dispatcher reaches a backend, through the contract's gRPC client and server: a b that
// is not already a gRPC client (a Process, a *backend.Client) is served in process (backend.ServeInProcess).
func Run(t *testing.T, b backend.Backend, opts Options) {
	opts = opts.withDefaults()
	b = overTheWire(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), opts.CallTimeout)
	desc, err := b.Describe(ctx)
	cancel()
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if desc.Name == "" || desc.Version == "" {
		t.Errorf("Describe must name the backend and its version; it answered %+v", desc)
	}
	if desc.ProtocolVersion != backend.ProtocolVersion {
		t.Errorf("Describe says protocol version %d, this harness is for %d", desc.ProtocolVersion,
			backend.ProtocolVersion)
	}
	h := &harness{b: b, o: opts, caps: desc.Capabilities}
	// One group around the scenarios, so that Run returns only once the parallel ones have ended too and
	// the caller may stop the backend with a plain defer.
	t.Run("conformance", h.all)
	h.summary(t, "conformance", len(Scenarios))
}

// Scenarios are the names of every scenario Run runs, in order.
var Scenarios = []string{ScenarioSingleContainer, ScenarioFailingContainer, ScenarioInitContainers, ScenarioInitFailure,
	ScenarioMultiContainer, ScenarioEnv, ScenarioTermination, ScenarioConfigMap, ScenarioSecret, ScenarioProjected, ScenarioEmptyDir,
	ScenarioSubPath, ScenarioSubPathExpr, ScenarioLogsAll, ScenarioLogsTail, ScenarioLogsBytes, ScenarioLogsTimestamps, ScenarioLogsSinceTime,
	ScenarioLogsSinceSeconds, ScenarioLogsUnknown, ScenarioLogsFollow, ScenarioLogsNoContainer, ScenarioLogsPrevious,
	ScenarioDeleteRunning, ScenarioDeleteFinished, ScenarioDeleteUnknown, ScenarioDeleteByRemoteID, ScenarioDeleteTwice,
	ScenarioVanished, ScenarioIdempotentCreate, ScenarioStatusUnknown, ScenarioStatusBatch, ScenarioList,
	ScenarioInvalidPod, ScenarioMalformedUID, ScenarioCapacity, ScenarioMetrics}

func (h *harness) all(t *testing.T) {
	h.run(t, ScenarioSingleContainer, nil, h.singleContainer)
	h.run(t, ScenarioFailingContainer, nil, h.failingContainer)
	h.run(t, ScenarioInitContainers, h.needs(backend.FeatureInitContainers, "emptyDir"), h.initContainers)
	h.run(t, ScenarioInitFailure, h.needs(backend.FeatureInitContainers), h.initFailure)
	h.run(t, ScenarioMultiContainer, h.needs(backend.FeatureMultipleContainers), h.multiContainer)
	h.run(t, ScenarioEnv, nil, h.env)
	h.run(t, ScenarioTermination, h.needs(backend.FeatureTerminationMessage), h.terminationMessage)
	t.Run("volumes", func(t *testing.T) {
		h.parallel(t)
		h.run(t, ScenarioConfigMap, h.needs("configMap"), h.configMapVolume)
		h.run(t, ScenarioSecret, h.needs("secret"), h.secretVolume)
		h.run(t, ScenarioProjected, h.needs("projected"), h.projectedVolume)
		h.run(t, ScenarioEmptyDir, h.needs("emptyDir", backend.FeatureMultipleContainers), h.emptyDirVolume)
		h.run(t, ScenarioSubPath, h.needs("configMap", "emptyDir", backend.FeatureSubPath), h.subPathVolume)
		h.run(t, ScenarioSubPathExpr, h.needs("emptyDir", backend.FeatureSubPath), h.subPathExprVolume)
	})
	t.Run("logs", func(t *testing.T) {
		h.parallel(t)
		h.logs(t)
	})
	h.run(t, ScenarioDeleteRunning, nil, h.deleteRunning)
	h.run(t, ScenarioDeleteFinished, nil, h.deleteFinished)
	h.run(t, ScenarioDeleteUnknown, nil, h.deleteUnknown)
	h.run(t, ScenarioDeleteByRemoteID, nil, h.deleteByRemoteID)
	h.run(t, ScenarioDeleteTwice, nil, h.deleteTwice)
	h.run(t, ScenarioVanished, nil, h.vanished)
	h.run(t, ScenarioIdempotentCreate, nil, h.idempotentCreate)
	h.run(t, ScenarioStatusUnknown, nil, h.statusUnknown)
	h.run(t, ScenarioStatusBatch, nil, h.statusBatch)
	h.run(t, ScenarioList, nil, h.list)
	h.run(t, ScenarioInvalidPod, nil, h.invalidPod)
	h.run(t, ScenarioMalformedUID, nil, h.malformedUID)
	h.run(t, ScenarioCapacity, nil, h.capacity)
	h.run(t, ScenarioMetrics, nil, h.metrics)
}

// needs returns the features (Feature* names or volume kinds) of names the backend does not declare.
func (h *harness) needs(names ...string) []string {
	var missing []string
	for _, n := range names {
		if !slices.Contains(h.caps.Features, n) && !slices.Contains(h.caps.VolumeKinds, n) && !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	return missing
}

func (h *harness) parallel(t *testing.T) {
	if h.o.Parallel {
		t.Parallel()
	}
}

// run runs one scenario as a subtest named after the last element of its name, unless the options skip it
// or the backend lacks a feature it needs.
func (h *harness) run(t *testing.T, name string, missing []string, f func(t *testing.T)) {
	t.Helper()
	sub := name[strings.LastIndex(name, "/")+1:]
	t.Run(sub, func(t *testing.T) {
		if reason, ok := h.o.Skip[name]; ok {
			h.skip(t, name, "the backend's test skips it: "+reason)
		}
		if len(missing) > 0 {
			h.skip(t, name, "the backend does not declare "+strings.Join(missing, ", ")+" in its capabilities")
		}
		h.parallel(t)
		f(t)
	})
}

func (h *harness) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), h.o.CallTimeout)
	t.Cleanup(cancel)
	return ctx
}

// deleteAtEnd deletes pod, with the remote id its Create returned in res, when tb ends. Even a pod whose
// Create failed is deleted: a backend may have made part of it.
func (h *harness) deleteAtEnd(tb testing.TB, pod *v1.Pod, res *backend.CreateResult) {
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), h.o.CallTimeout)
		defer cancel()
		if err := h.b.Delete(ctx, backend.DeleteRequest{Pod: pod, RemoteID: res.RemoteID,
			GracePeriod: h.o.GracePeriod}); err != nil {
			tb.Errorf("cleanup: Delete of pod %s: %v", pod.Name, err)
		}
	})
}

// create creates the pod with its objects, checks the answer, and deletes the pod when the test ends.
func (h *harness) create(t *testing.T, pod *v1.Pod, objs Objects) backend.CreateResult {
	t.Helper()
	req := h.request(pod, objs)
	res, err := h.b.Create(h.ctx(t), req)
	h.deleteAtEnd(t, pod, &res)
	if err != nil {
		t.Fatalf("Create of pod %s: %v", pod.Name, err)
	}
	if res.RemoteID == "" {
		t.Errorf("Create of pod %s returned no remote id", pod.Name)
	}
	return res
}

func (h *harness) waitPhase(t *testing.T, pod *v1.Pod, phases ...v1.PodPhase) interlink.PodStatus {
	t.Helper()
	return WaitForPhase(t, h.b, pod, h.o.PodTimeout, phases...)
}

func (h *harness) delete(t *testing.T, pod *v1.Pod, remoteID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.o.CallTimeout+h.o.GracePeriod)
	defer cancel()
	if err := h.b.Delete(ctx, backend.DeleteRequest{Pod: pod, RemoteID: remoteID, GracePeriod: h.o.GracePeriod}); err != nil {
		t.Fatalf("Delete of pod %s: %v", pod.Name, err)
	}
}
