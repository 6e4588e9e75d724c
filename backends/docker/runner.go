package docker

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// runner supervises one pod as the kubelet would: it pulls images, runs the init containers one after
// another, then starts the regular containers together, and restarts exited ones as the restart policy says,
// each restart a new container (attempt) after a doubling back-off. It works by reconciliation: each step
// looks at the pod's containers on the engine and does what comes next, so a runner started after a backend
// restart simply carries on.
type runner struct {
	b      *Backend
	log    *slog.Logger // tagged with the pod's pod_uid, namespace and name
	rec    *record
	plan   *podPlan
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	mu       sync.Mutex
	watched  map[string]bool          // container ids a wait goroutine is on
	failures map[string]launchFailure // by container name: the last launch failure, for its back-off

	preExecDone bool // the pod's pre-exec text has run
	// certain says that the step under way saw the pod's containers in a list of the engine made for it, not
	// in the view: only such a step may make, start, stop or remove anything (see act).
	certain bool
	// seed is what the first step knows without asking: Create just made and started the pause container
	// of a pod that has nothing else yet (nil: ask).
	seed *podContainers
	// ran names the regular containers this runner has made or seen a run of. Under restartPolicy Never, one of them
	// that the engine no longer has was removed behind the backend's back: it is not made again (the kubelet
	// does not run a container of such a pod twice), and its status says it is gone.
	ran map[string]bool
	// steps counts the steps taken, for tests.
	steps atomic.Int64
}

type launchFailure struct {
	attempt int
	count   int
	retryAt time.Time
}

// pollInterval bounds how long a runner sleeps without looking, in case an engine event was missed.
const pollInterval = 30 * time.Second

// startRunner starts the supervision of a recorded pod. seed, when not nil, is what its first step acts on
// instead of a list of the pod: the containers Create just made.
func (b *Backend) startRunner(rec *record, seed *podContainers) {
	uid := string(rec.Pod.UID)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx.Err() != nil || b.runners[uid] != nil {
		return
	}
	ctx, cancel := context.WithCancel(b.ctx)
	r := &runner{b: b, rec: rec, ctx: ctx, log: b.podLog(refOfPod(rec.Pod)), cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1),
		watched: map[string]bool{}, failures: map[string]launchFailure{}, seed: seed}
	b.runners[uid] = r
	go r.run()
}

// stopRunner stops the pod's runner, if any, and waits for it to be gone.
func (b *Backend) stopRunner(uid string) {
	b.mu.Lock()
	r := b.runners[uid]
	delete(b.runners, uid)
	b.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
}

func (r *runner) run() {
	uid := string(r.rec.Pod.UID)
	log := r.log
	defer func() {
		r.b.mu.Lock()
		if r.b.runners[uid] == r {
			delete(r.b.runners, uid)
		}
		r.b.mu.Unlock()
		close(r.done)
	}()
	for {
		wait, finished, err := r.step()
		if r.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errNotRecorded) {
			log.Info("the pod is no longer recorded (deleted); its supervision ends and nothing is re-created for it")
			return
		}
		switch {
		case errors.Is(err, errEngineStopping):
			log.Debug("the engine is stopping; the pod's next start waits for it")
			wait = engineStoppingRetry
		case err != nil:
			log.Warn("pod supervision step failed; retrying", "err", err)
			wait = 5 * time.Second
		}
		if finished {
			log.Info("pod finished")
			return
		}
		if wait <= 0 || wait > pollInterval {
			wait = pollInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// step does what comes next for the pod. It returns how long to wait at most before the next step (0:
// until a container changes) and whether the pod has finished for good.
//
// It looks at the pod in the backend's view first, which costs no engine call while the view is current:
// a pod whose containers run as they should is only watched. When that look finds something to do (make,
// start, stop or remove a container), it does none of it and the step starts again on a list of the pod
// from the engine, so that nothing destructive rests on the view's bounded staleness.
func (r *runner) step() (time.Duration, bool, error) {
	wait, finished, err := r.stepOn(false)
	if errors.Is(err, errUnsure) {
		return r.stepOn(true)
	}
	return wait, finished, err
}

// errUnsure ends a step that looked at the view and found something to do: the step is made again on a
// list of the pod.
var errUnsure = errors.New("the step would act on the view; it lists the pod first")

// act tells whether the step may act on what it saw (see step).
func (r *runner) act() bool { return r.certain }

// observe returns the pod's containers: from the view when it is current for the pod and list is false,
// else from a list of the pod; it records which in r.certain.
func (r *runner) observe(list bool) (*podContainers, error) {
	uid := string(r.rec.Pod.UID)
	if seed := r.seed; seed != nil {
		r.seed, r.certain = nil, true
		return seed, nil
	}
	if !list {
		if err := r.b.ensureFresh(r.ctx); err != nil {
			return nil, err
		}
		if pc, ok := r.b.view.pod(uid, time.Now(), r.b.cfg.StatusMaxAge.D()); ok {
			r.certain = false
			if pc == nil {
				pc = &podContainers{runs: map[string][]container.Summary{}}
			}
			return pc, nil
		}
	}
	pc, err := r.b.listPod(r.ctx, uid)
	r.certain = err == nil
	return pc, err
}

func (r *runner) stepOn(list bool) (time.Duration, bool, error) {
	r.steps.Add(1)
	p := r.rec.Pod
	if !r.recorded() {
		return 0, false, errNotRecorded
	}
	if r.plan == nil {
		plan, err := r.b.plan(r.rec)
		if err != nil {
			for _, c := range append(append([]v1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
				r.b.setError(p, c.Name, 0, pod.ReasonCreateContainerError, err.Error())
			}
			return time.Minute, false, nil
		}
		r.plan = plan
	}
	pc, err := r.observe(list)
	if err != nil {
		return 0, false, err
	}
	if r.b.readState(p).Evicted != nil {
		if !r.act() {
			return 0, false, errUnsure
		}
		if pc.pause != nil {
			return 0, r.finish(pc.pause.ID), nil
		}
		return 0, true, nil
	}
	dirs := pod.SizeLimitedDirs(r.plan.volumes)
	limited := len(dirs) > 0
	if limited {
		if msg := pod.OverLimit(dirs); msg != "" {
			if !r.act() {
				return 0, false, errUnsure
			}
			r.evict(pc, msg)
			if pc.pause != nil {
				r.finish(pc.pause.ID)
			}
			return 0, true, nil
		}
	}
	pauseID, err := r.ensurePause(pc)
	if err != nil {
		return 0, false, err
	}
	wait, finished, err := r.containers(pc, pauseID)
	if limited && !finished && (wait == 0 || wait > pod.UsageInterval) {
		wait = pod.UsageInterval
	}
	return wait, finished, err
}

// initContainers runs the init containers in order, as far as their state allows now; done is true once
// every one has succeeded, else wait, finished and err are the step's answer.
func (r *runner) initContainers(pc *podContainers, pauseID string, policy v1.RestartPolicy) (wait time.Duration, finished, done bool, err error) {
	ctx, p := r.ctx, r.rec.Pod
	// Init containers that succeeded are never run again, whatever the pod's policy.
	initPolicy := policy
	if initPolicy == v1.RestartPolicyAlways {
		initPolicy = v1.RestartPolicyOnFailure
	}
	for i := range p.Spec.InitContainers {
		c := &p.Spec.InitContainers[i]
		runs := pc.runs[c.Name]
		if len(runs) == 0 {
			if !r.act() {
				return 0, false, false, errUnsure
			}
			return r.launch(c, pod.RoleInit, 0, pauseID), false, false, nil
		}
		last := runs[len(runs)-1]
		info, err := r.b.runInfo(ctx, last)
		if err != nil {
			return 0, false, false, err
		}
		switch info.phase() {
		case runPending:
			if !r.act() {
				return 0, false, false, errUnsure
			}
			return r.startCreated(c, last), false, false, nil
		case runRunning:
			r.watch(last.ID)
			return 0, false, false, nil
		}
		t := info.termination(last.ID)
		if t.ExitCode == 0 {
			continue
		}
		if !pod.ShouldRestart(initPolicy, int(t.ExitCode)) {
			if !r.act() {
				return 0, false, false, errUnsure
			}
			return 0, r.finish(pauseID), false, nil
		}
		if d := r.restartDelay(attemptOf(last), t); d > 0 {
			return d, false, false, nil
		}
		if !r.act() {
			return 0, false, false, errUnsure
		}
		return r.launch(c, pod.RoleInit, attemptOf(last)+1, pauseID), false, false, nil
	}
	return 0, false, true, nil
}

// sawRun records that a run of regular container name exists (see ran).
func (r *runner) sawRun(name string) {
	if r.ran == nil {
		r.ran = map[string]bool{}
	}
	r.ran[name] = true
}

// containers runs the init containers, then the regular ones, as far as their state allows now.
func (r *runner) containers(pc *podContainers, pauseID string) (time.Duration, bool, error) {
	ctx, p := r.ctx, r.rec.Pod
	if ready, wait, err := r.preExec(pc, pauseID); !ready || err != nil {
		return wait, false, err
	}
	policy := pod.RestartPolicy(p)
	if wait, finished, done, err := r.initContainers(pc, pauseID, policy); !done {
		return wait, finished, err
	}
	var wait time.Duration
	soonest := func(d time.Duration) {
		if d > 0 && (wait == 0 || d < wait) {
			wait = d
		}
	}
	allDone := true
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		runs := pc.runs[c.Name]
		if len(runs) == 0 {
			if policy == v1.RestartPolicyNever && r.ran[c.Name] {
				continue // it vanished: never made again
			}
			if !r.act() {
				return 0, false, errUnsure
			}
			allDone = false
			soonest(r.launch(c, pod.RoleContainer, 0, pauseID))
			continue
		}
		r.sawRun(c.Name)
		last := runs[len(runs)-1]
		info, err := r.b.runInfo(ctx, last)
		if err != nil {
			return 0, false, err
		}
		switch info.phase() {
		case runPending:
			if !r.act() {
				return 0, false, errUnsure
			}
			allDone = false
			soonest(r.startCreated(c, last))
			continue
		case runRunning:
			allDone = false
			r.watch(last.ID)
			continue
		}
		t := info.termination(last.ID)
		if !pod.ShouldRestart(policy, int(t.ExitCode)) {
			continue
		}
		allDone = false
		if d := r.restartDelay(attemptOf(last), t); d > 0 {
			soonest(d)
			continue
		}
		if !r.act() {
			return 0, false, errUnsure
		}
		soonest(r.launch(c, pod.RoleContainer, attemptOf(last)+1, pauseID))
	}
	if allDone {
		if !r.act() {
			return 0, false, errUnsure
		}
		return 0, r.finish(pauseID), nil
	}
	return wait, false, nil
}

// ensurePause returns the pod's pause container, started; it makes a new one if it is gone.
func (r *runner) ensurePause(pc *podContainers) (string, error) {
	if pc.pause == nil || pc.pause.State != "running" && !r.finished(pc) {
		if !r.act() {
			return "", errUnsure
		}
		unlock, ok := r.lockRecorded()
		if !ok {
			return "", errNotRecorded
		}
		defer unlock()
	}
	if pc.pause == nil {
		id, err := r.b.createPause(r.ctx, r.rec.Pod, r.plan.volumes)
		if err != nil {
			return "", err
		}
		r.rec.RemoteID = id
		_ = r.b.writeRecord(string(r.rec.Pod.UID), r.rec)
		return id, nil
	}
	if pc.pause.State != "running" && !r.finished(pc) {
		if !r.b.engineAccepting() {
			return "", errEngineStopping
		}
		if err := r.b.cli.ContainerStart(r.ctx, pc.pause.ID, container.StartOptions{}); err != nil {
			if staleTask(err) {
				// A pause started while dockerd was stopping (in the instant between engineAccepting and
				// the start) left its task in containerd, which the restarted dockerd does not know and will
				// never start again: the pause goes, and the next step makes a new one that the pod's next
				// attempts join, as the kubelet makes a new sandbox for a pod whose sandbox is lost.
				r.log.Warn("the pause container cannot start again (a task of it outlived dockerd); replacing it",
					"container", shortID(pc.pause.ID), "err", err)
				_ = r.b.cli.ContainerRemove(r.ctx, pc.pause.ID, container.RemoveOptions{Force: true})
			}
			return "", err
		}
	}
	return pc.pause.ID, nil
}

// staleTask tells an engine's refusal to start a container whose containerd task still exists.
func staleTask(err error) bool {
	return err != nil && strings.Contains(err.Error(), "task ") && strings.Contains(err.Error(), "already exists")
}

// errEngineStopping defers a start the runner makes on its own while the engine stops (engineAccepting); the
// runner tries again after engineStoppingRetry.
var errEngineStopping = errors.New("the engine takes no new connections (it is stopping); the start waits for it")

const engineStoppingRetry = 2 * time.Second

// errNotRecorded ends a runner whose pod is no longer the backend's: Delete unregistered the runner, or the
// pod's record is gone from the data directory.
var errNotRecorded = errors.New("the pod is no longer recorded")

// lockRecorded takes the pod directory's lock, which Delete holds while it removes the pod, and returns its
// release if the pod is still the runner's to run (see recorded); otherwise it returns false, holding
// nothing. The runner holds it around each thing it (re-)creates or starts on its own (the pause
// container, a container's attempt, a start), so that nothing is made for a pod once a Delete, of this
// process or of another on the same data directory, has begun removing it.
func (r *runner) lockRecorded() (func(), bool) {
	unlock, err := pod.LockDir(r.b.podDir(string(r.rec.Pod.UID)))
	if err != nil {
		return nil, false
	}
	if !r.recorded() {
		unlock()
		return nil, false
	}
	return unlock, true
}

// recorded tells whether the runner may still make or start anything for its pod: it is the pod's
// registered runner, not stopped, and the pod's record is on disk. Delete unregisters the runner (under
// b.mu, read here), cancels it and waits for it to end before it lists what to remove.
func (r *runner) recorded() bool {
	uid := string(r.rec.Pod.UID)
	r.b.mu.Lock()
	current := r.b.runners[uid] == r
	r.b.mu.Unlock()
	if !current || r.ctx.Err() != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(r.b.podDir(uid), recordFile))
	return err == nil
}

// finished tells a pod whose pause was stopped because it finished from one whose pause died.
func (r *runner) finished(pc *podContainers) bool {
	_, err := os.Stat(filepath.Join(r.b.podDir(string(r.rec.Pod.UID)), finishedFile))
	return err == nil
}

// finishedFile marks a pod that has finished for good (all its containers done, or an init container
// failed under restartPolicy Never), so that its stopped pause container is not started again.
const finishedFile = "finished"

// finish stops the pause container of a pod that has finished; its containers stay for status and logs.
func (r *runner) finish(pauseID string) bool {
	_ = os.WriteFile(filepath.Join(r.b.podDir(string(r.rec.Pod.UID)), finishedFile), nil, 0o600)
	if pc, err := r.b.listPod(r.ctx, string(r.rec.Pod.UID)); err == nil {
		r.b.stopHelpers(r.ctx, pc)
	}
	timeout := 2
	if err := r.b.cli.ContainerStop(r.ctx, pauseID, container.StopOptions{Timeout: &timeout}); err != nil && !cerrdefs.IsNotFound(err) && r.ctx.Err() == nil {
		r.log.Warn("cannot stop the pause container of a finished pod", "err", err)
	}
	return true
}

// createContext bounds an engine call that makes an object without letting the runner's cancellation cut
// it short.
func createContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
}

// backoffReset is how long a run must last for the next restart to wait only the initial back-off again,
// as the kubelet's CrashLoopBackOff resets after 10 minutes of running.
const backoffReset = 10 * time.Minute

// restartDelay is how long to wait before restarting a container whose run t ended: the back-off doubles
// with each restart, up to its maximum.
func (r *runner) restartDelay(attempt int, t pod.Termination) time.Duration {
	d := r.b.cfg.RestartBackoff.D()
	if t.FinishedAt.Sub(t.StartedAt) >= backoffReset {
		attempt = 0
	}
	for i := 0; i < attempt && d < r.b.cfg.RestartBackoffMax.D(); i++ {
		d *= 2
	}
	d = min(d, r.b.cfg.RestartBackoffMax.D())
	return time.Until(t.FinishedAt.Add(d))
}

// launch pulls the image and creates and starts one attempt of c. A failure is recorded for Status and
// retried after a back-off, whose length launch returns (0 when the container started).
func (r *runner) launch(c *v1.Container, role string, attempt int, pauseID string) time.Duration {
	ctx, p := r.ctx, r.rec.Pod
	if f, ok := r.failures[c.Name]; ok && f.attempt == attempt && time.Now().Before(f.retryAt) {
		return time.Until(f.retryAt)
	}
	if reason, msg := r.b.ensureImage(ctx, c); reason != "" {
		return r.fail(c, attempt, reason, msg)
	}
	cfg, hc, err := r.b.containerConfig(ctx, r.plan, c, role, attempt, pauseID)
	if err != nil {
		return r.fail(c, attempt, pod.ReasonCreateContainerError, err.Error())
	}
	unlock, ok := r.lockRecorded()
	if !ok {
		return 0 // the next step ends the runner
	}
	start := time.Now()
	// A create is never abandoned halfway: were the runner stopped (by Delete) during the call, the engine
	// could finish making a container after Delete listed the pod's containers, and leave it behind.
	cctx, cancel := createContext(ctx)
	resp, err := r.b.cli.ContainerCreate(cctx, cfg, hc, &network.NetworkingConfig{}, nil, containerName(p, c.Name, attempt))
	cancel()
	unlock()
	r.b.metrics.observe("container_create", start, err)
	if cerrdefs.IsConflict(err) {
		return time.Second // made by an earlier step that did not see it listed yet; the next step will
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		if cerrdefs.IsNotFound(err) {
			r.b.images.forget(c.Image) // removed since it was inspected: the next try inspects, and pulls
		}
		return r.fail(c, attempt, pod.ReasonCreateContainerError, err.Error())
	}
	r.b.setError(p, c.Name, attempt, "", "")
	delete(r.failures, c.Name)
	if role == pod.RoleContainer {
		r.sawRun(c.Name) // made: from now on a run of it exists or vanished
	}
	// A start failure leaves the container created with the engine's error, which Status reports as a
	// terminated run (StartError), as the kubelet does.
	if errors.Is(r.start(resp.ID), errEngineStopping) {
		return engineStoppingRetry
	}
	r.prune(c.Name, attempt)
	return 0
}

// startCreated starts a run that was created but never started (a backend stopped in between): its
// subPaths are bound again first, resolved now. A refusal is recorded like a failed launch and retried after
// its back-off, whose length startCreated returns.
func (r *runner) startCreated(c *v1.Container, run container.Summary) time.Duration {
	attempt := attemptOf(run)
	if f, ok := r.failures[c.Name]; ok && f.attempt == attempt && time.Now().Before(f.retryAt) {
		return time.Until(f.retryAt)
	}
	if _, err := r.b.pinMounts(r.rec.Pod, c, r.plan); err != nil {
		return r.fail(c, attempt, pod.ReasonCreateContainerError, err.Error())
	}
	r.b.setError(r.rec.Pod, c.Name, attempt, "", "")
	delete(r.failures, c.Name)
	if errors.Is(r.start(run.ID), errEngineStopping) {
		return engineStoppingRetry
	}
	return 0
}

func (r *runner) start(id string) error {
	if !r.b.engineAccepting() {
		return errEngineStopping
	}
	unlock, ok := r.lockRecorded()
	if !ok {
		return errNotRecorded
	}
	start := time.Now()
	err := r.b.cli.ContainerStart(r.ctx, id, container.StartOptions{})
	unlock()
	r.b.metrics.observe("container_start", start, err)
	r.b.inspects.forget(id)
	r.watch(id)
	if err != nil && !cerrdefs.IsNotFound(err) {
		r.log.Info("a container failed to start", "container", id, "err", err)
	}
	return nil
}

// fail records a launch failure and returns the back-off before the next try.
func (r *runner) fail(c *v1.Container, attempt int, reason, message string) time.Duration {
	f := r.failures[c.Name]
	if f.attempt != attempt {
		f = launchFailure{attempt: attempt}
	}
	f.count++
	d := r.b.cfg.RestartBackoff.D()
	for i := 1; i < f.count && d < r.b.cfg.RestartBackoffMax.D(); i++ {
		d *= 2
	}
	d = min(d, r.b.cfg.RestartBackoffMax.D())
	f.retryAt = time.Now().Add(d)
	r.failures[c.Name] = f
	r.b.setError(r.rec.Pod, c.Name, attempt, reason, message)
	r.log.Info("container could not be started; retrying", "container", c.Name,
		"reason", reason, "message", message, "retry_in", d)
	return d
}

// prune removes the runs of a container older than the previous one: the kubelet keeps one dead run
// for lastState and logs --previous.
func (r *runner) prune(name string, current int) {
	if current < 2 {
		return // no run is older than the previous one
	}
	pc, err := r.b.listPod(r.ctx, string(r.rec.Pod.UID))
	if err != nil {
		return
	}
	for _, run := range pc.runs[name] {
		if attemptOf(run) < current-1 {
			_ = r.b.cli.ContainerRemove(r.ctx, run.ID, container.RemoveOptions{Force: true})
		}
	}
}

// watch wakes the runner when the container stops.
func (r *runner) watch(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watched[id] {
		return
	}
	r.watched[id] = true
	go func() {
		ch, errCh := r.b.cli.ContainerWait(r.ctx, id, container.WaitConditionNotRunning)
		select {
		case <-ch:
		case err := <-errCh:
			if r.ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				r.log.Debug("waiting for a container failed", "container", id, "err", err)
			}
		case <-r.ctx.Done():
			return
		}
		r.mu.Lock()
		delete(r.watched, id)
		r.mu.Unlock()
		// The container changed (or the engine's answer failed): the step this wakes lists the pod rather
		// than trust a view the container's die event may not have reached yet.
		r.b.view.touch(string(r.rec.Pod.UID))
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}()
}

// recover takes back the supervision of every recorded pod, and removes the remains of pods whose Create
// never finished.
func (b *Backend) recover(ctx context.Context) error {
	entries, err := os.ReadDir(filepath.Join(b.dataDir, "pods"))
	if err != nil {
		return err
	}
	var unfinished []podRef
	for _, e := range entries {
		if !e.IsDir() || pod.ValidPodUID(e.Name()) != nil {
			continue
		}
		uid := e.Name()
		rec, err := b.readRecord(uid)
		if err != nil || rec.RemoteID == "" {
			ref := podRef{uid: uid}
			if err == nil && rec.Pod != nil {
				ref = refOfPod(rec.Pod) // its record names it, when the create got that far
			}
			unfinished = append(unfinished, ref)
			continue
		}
		b.startRunner(rec, nil)
	}
	return b.removeUnfinished(ctx, unfinished)
}

// recoveryRemovals bounds how many half-created pods recover removes at once.
const recoveryRemovals = 8

// removeUnfinished removes the pods whose Create never finished, a few at a time: a backend killed in a storm
// of creates leaves dozens, and the backend is not ready (the dispatcher's creates wait for it) until they
// are gone. It returns the first failure, once every removal has ended.
func (b *Backend) removeUnfinished(ctx context.Context, pods []podRef) error {
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, recoveryRemovals)
		once  sync.Once
		first error
	)
	for _, ref := range pods {
		b.podLog(ref).Info("removing a pod whose creation did not finish")
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := b.removePod(ctx, ref, 0); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

func (c *inspectCache) forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}
