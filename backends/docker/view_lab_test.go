package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Polled like interLink polls (one pod per call, every pod again and again), the backend answers from its
// view: the engine calls per status, counted by interlink_backend_engine_calls_total, stay at or under 0.05
// (a list per call, as before the view, is 1). It is a count, not a timing.
func TestStatusCallsPerStatus(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	const n, rounds = 8, 25
	pods := make([]*v1.Pod, n)
	for i := range pods {
		pods[i] = conformance.NewPod(fmt.Sprintf("poll%d", i), conformance.ShellContainer("main", "sleep 600"))
		create(t, b, pods[i], conformance.Objects{})
	}
	for _, p := range pods {
		waitPhase(t, b, p, v1.PodRunning)
	}
	// The view learnt of the pods' containers from the engine's events (a pause and a container made and
	// started per pod), not only from the lists of their runners.
	b.view.mu.Lock()
	applied := b.view.applied
	b.view.mu.Unlock()
	// At least one per pod: a pause and a container made and started per pod are four events, but one made
	// before the stream was opened is seen by the list instead.
	if applied < n {
		t.Errorf("the view took in %d engine events while %d pods started, want at least one per pod", applied, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := b.metrics.callCount()
	for r := 0; r < rounds; r++ {
		for _, p := range pods {
			sts, err := b.Status(ctx, []*v1.Pod{p})
			if err != nil {
				t.Fatal(err)
			}
			if len(sts) != 1 || sts[0].PodUID != string(p.UID) || len(sts[0].Containers) != 1 || sts[0].Containers[0].State.Running == nil {
				t.Fatalf("round %d: status of %s is %+v, want its one container running", r, p.Name, sts)
			}
		}
	}
	calls := b.metrics.callCount() - before
	per := calls / float64(n*rounds)
	t.Logf("%d single-pod statuses of %d running pods cost %.0f engine calls: %.3f per status", n*rounds, n, calls, per)
	if per > 0.05 {
		t.Errorf("%.3f engine calls per single-pod status (%.0f for %d), want at most 0.05", per, calls, n*rounds)
	}
}

// A runner whose pod runs as it should looks at the view, not at the engine: woken again and again (as its
// poll interval or a missed wake-up would), its steps cost no engine call. A step that must act (make or
// start a container) lists the pod first; that is what the other tests of a pod's life exercise.
func TestSteadyRunnerAsksTheEngineNothing(t *testing.T) {
	t.Parallel()
	b := newBackend(t, map[string]any{"resync_interval": "10m"})
	const n, rounds = 4, 5
	pods := make([]*v1.Pod, n)
	for i := range pods {
		pods[i] = conformance.NewPod(fmt.Sprintf("steady%d", i), conformance.ShellContainer("main", "sleep 600"))
		create(t, b, pods[i], conformance.Objects{})
	}
	for _, p := range pods {
		waitPhase(t, b, p, v1.PodRunning)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The statuses list what events touched since, so that the view is current for every pod.
	if _, err := b.Status(ctx, pods); err != nil {
		t.Fatal(err)
	}
	runners := make([]*runner, n)
	b.mu.Lock()
	for i, p := range pods {
		runners[i] = b.runners[string(p.UID)]
	}
	b.mu.Unlock()
	before := b.metrics.callCount("container_list", "container_inspect", "container_create", "container_start")
	beforeLists := b.metrics.callCount("container_list")
	for i, r := range runners {
		if r == nil {
			t.Fatalf("pod %s has no runner", pods[i].Name)
		}
		from := r.steps.Load()
		deadline := time.Now().Add(time.Minute)
		for r.steps.Load() < from+rounds {
			if time.Now().After(deadline) {
				t.Fatalf("the runner of %s took %d steps in a minute of wake-ups, want %d", pods[i].Name, r.steps.Load()-from, rounds)
			}
			select {
			case r.wake <- struct{}{}:
			default:
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	calls := b.metrics.callCount("container_list", "container_inspect", "container_create", "container_start") - before
	lists := b.metrics.callCount("container_list") - beforeLists
	t.Logf("%d steps of %d running pods' runners cost %.0f engine lists, inspects, creates and starts (%.0f lists)", n*rounds, n, calls, lists)
	// Allowed: a list of each pod whose start event reached the view after the statuses above (a loaded
	// engine delivers events seconds late), and one for an event stream that broke and was listed again
	// meanwhile. A list per step, what the runners did before they read the view, is n*rounds.
	if calls > n+1 || calls != lists {
		t.Errorf("%d steps of steady runners cost %.0f engine calls (%.0f of them lists), want at most %d lists", n*rounds, calls, lists, n+1)
	}
	for _, p := range pods {
		if st := waitPhase(t, b, p, v1.PodRunning); st.Containers[0].RestartCount != 0 {
			t.Errorf("pod %s restarted its container (%d) while its runner was woken", p.Name, st.Containers[0].RestartCount)
		}
	}
}

// cutEvents is the lab's engine with its event stream cut on demand, as a dockerd restart or a broken
// connection would cut it: open streams end, and new ones are refused until mend.
type cutEvents struct {
	engine
	mu      sync.Mutex
	down    bool
	cancels []context.CancelFunc
}

func (c *cutEvents) Events(ctx context.Context, o events.ListOptions) (<-chan events.Message, <-chan error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		errs := make(chan error, 1)
		errs <- errors.New("the test cut the event stream")
		return nil, errs
	}
	ctx, cancel := context.WithCancel(ctx)
	c.cancels = append(c.cancels, cancel)
	return c.engine.Events(ctx, o)
}

func (c *cutEvents) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = true
	for _, cancel := range c.cancels {
		cancel()
	}
	c.cancels = nil
}

func (c *cutEvents) mend() {
	c.mu.Lock()
	c.down = false
	c.mu.Unlock()
}

// A broken event stream is noticed and logged once however long it stays broken; meanwhile statuses are
// still exact (a container's exit, a pod removed behind the backend's back), at most status_max_age late;
// once the stream is back, the view is listed again and answers alone.
func TestEventStreamBreaks(t *testing.T) {
	t.Parallel()
	labtest.RequireDocker(t)
	var logs labtest.Buffer
	cut := &cutEvents{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := build(ctx, testEnv(t, map[string]any{"status_max_age": "500ms"}), options{
		log:  slog.New(slog.NewTextHandler(&logs, nil)),
		wrap: func(e engine) engine { cut.engine = e; return cut },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conformance.DeleteAll(t, b, time.Second)
		b.Close()
	})
	gone := conformance.NewPod("gone", conformance.ShellContainer("main", "sleep 600"))
	// Never: the vanish below removes the containers one by one, and with Always the runner may start a new
	// attempt between them, joined to a pause about to go (a start error, not the vanished pod this checks).
	gone.Spec.RestartPolicy = v1.RestartPolicyNever
	create(t, b, gone, conformance.Objects{})
	waitPhase(t, b, gone, v1.PodRunning)

	cut.cut()
	waitLog(t, &logs, "event stream broke", 1)
	exits := conformance.NewPod("exits", conformance.ShellContainer("main", "sleep 1; exit 3"))
	exits.Spec.RestartPolicy = v1.RestartPolicyNever
	create(t, b, exits, conformance.Objects{})
	st := waitPhase(t, b, exits, v1.PodFailed)
	if term := status(st, "main").State.Terminated; term == nil || term.ExitCode != 3 {
		t.Errorf("with the stream down, the exit is reported as %+v, want exit code 3", status(st, "main").State)
	}
	b.vanishForTest(t, string(gone.UID), "")
	// docker rm -f kills before it removes: for a moment the engine lists the container as exited (137).
	waitFor(t, b, gone, "the removed pod reported gone (ContainerStatusUnknown) with the stream down", func(st interlink.PodStatus) bool {
		term := status(st, "main").State.Terminated
		return term != nil && term.Reason == pod.ReasonUnknown
	})
	time.Sleep(2500 * time.Millisecond) // reconnections keep failing meanwhile
	if n := strings.Count(logs.String(), "event stream broke"); n != 1 {
		t.Errorf("the broken stream was logged %d times, want once:\n%s", n, logs.String())
	}

	cut.mend()
	waitLog(t, &logs, "event stream is back", 1)
	running := conformance.NewPod("after", conformance.ShellContainer("main", "sleep 600"))
	create(t, b, running, conformance.Objects{})
	waitPhase(t, b, running, v1.PodRunning)
	before := b.metrics.callCount()
	for i := 0; i < 40; i++ {
		if _, err := b.Status(ctx, []*v1.Pod{running, exits}); err != nil {
			t.Fatal(err)
		}
	}
	// Late events of the two pods (the last start, the finished pod's pause stopping) may each cost a list of
	// that pod, and a periodic full list may fall in; a list per call would be 40.
	if calls := b.metrics.callCount() - before; calls > 4 {
		t.Errorf("with the stream back, 40 statuses cost %.0f engine calls, want at most 4", calls)
	}
	if err := b.Delete(ctx, backend.DeleteRequest{Pod: running, GracePeriod: time.Second}); err != nil {
		t.Fatal(err)
	}
	sts, err := b.Status(ctx, []*v1.Pod{running})
	if err != nil || len(sts) != 1 || len(sts[0].Containers) != 1 || sts[0].Containers[0].State.Terminated == nil ||
		sts[0].Containers[0].State.Terminated.Reason != pod.ReasonNotFound {
		t.Errorf("status right after its delete: %+v, %v; want the pod reported not found", sts, err)
	}
}

func waitLog(t *testing.T, logs *labtest.Buffer, text string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(logs.String(), text) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no log line %q within 30s:\n%s", text, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
