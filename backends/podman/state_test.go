package podman

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// The state logic from tables, through the stateEngine seam: what the view does with lists and events, and
// what Status makes of list and inspect results. The lab tests drive the same code against real Podman.

// tableEngine answers from tables and counts what it is asked.
type tableEngine struct {
	mu        sync.Mutex
	ctrs      []libpod.ListContainer
	inspects  map[string]libpod.InspectContainer
	events    []libpod.Event // for non-streaming queries, filtered by container id
	lists     int
	podLists  int
	podsLists int // lists of several Podman pods
	inspectN  int
}

func (e *tableEngine) ContainerList(_ context.Context, labels map[string]string) ([]libpod.ListContainer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if labels[pod.LabelPodUID] != "" {
		e.podLists++
	} else {
		e.lists++
	}
	var out []libpod.ListContainer
	for _, c := range e.ctrs {
		if uid := labels[pod.LabelPodUID]; uid == "" || c.Labels[pod.LabelPodUID] == uid {
			out = append(out, c)
		}
	}
	return out, nil
}

func (e *tableEngine) ContainerListInPods(_ context.Context, labels map[string]string, pods []string) ([]libpod.ListContainer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.podsLists++
	var out []libpod.ListContainer
	for _, c := range e.ctrs {
		if slices.Contains(pods, c.PodName) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (e *tableEngine) ContainerInspect(_ context.Context, id string) (libpod.InspectContainer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inspectN++
	ins, ok := e.inspects[id]
	if !ok {
		return ins, &libpod.Error{Status: 404, Message: "no such container", Op: "inspect container " + id}
	}
	return ins, nil
}

func (e *tableEngine) Events(ctx context.Context, opt libpod.EventOptions, fn func(libpod.Event) error) error {
	if opt.Stream {
		<-ctx.Done() // the tests feed the view's event method directly
		return ctx.Err()
	}
	e.mu.Lock()
	evs := append([]libpod.Event(nil), e.events...)
	e.mu.Unlock()
	for _, ev := range evs {
		if ids := opt.Filters["container"]; len(ids) > 0 && ids[0] != ev.Actor.ID {
			continue
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

func (e *tableEngine) counts() (lists, podLists, inspects int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lists, e.podLists, e.inspectN
}

const tableInstance = "table"

func labelsOf(uid, name, role string) map[string]string {
	return map[string]string{pod.LabelInstance: tableInstance, pod.LabelBackend: "podman", pod.LabelPodUID: uid,
		pod.LabelContainer: name, pod.LabelRole: role}
}

// tableBackend is a backend on a tableEngine, with the event stream taken as connected from the start.
func tableBackend(t *testing.T, eng *tableEngine) *Backend {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := &Backend{
		env: backend.Env{Name: "podman", Instance: tableInstance, DataDir: t.TempDir()}, eng: eng, log: log,
		records: map[string]*record{}, running: map[string]launchHandle{}, watches: map[string]launchHandle{},
		lastStates: map[string]lastRun{}, inspects: map[string]inspectEntry{}, ctx: ctx,
	}
	b.view = newView(ctx, eng, map[string]string{pod.LabelInstance: tableInstance, pod.LabelBackend: "podman"}, 2*time.Second, time.Hour, log)
	b.view.connected(time.Now().Add(-time.Minute))
	<-b.view.kick // no resync loop runs here
	return b
}

func recordPod(b *Backend, p *v1.Pod, launched bool) {
	b.records[string(p.UID)] = &record{Pod: p, PodName: podmanName(p), Launched: launched}
}

func ctrEvent(id, uid, action string) libpod.Event {
	var e libpod.Event
	e.Type, e.Action, e.Actor.ID = "container", action, id
	e.Actor.Attributes = labelsOf(uid, "main", pod.RoleContainer)
	e.TimeNano = time.Now().UnixNano()
	return e
}

func TestViewAnswersWithoutTheEngineUntilAnEvent(t *testing.T) {
	p := newPod("table", busybox("main", "sleep 1"))
	uid := string(p.UID)
	started := time.Now().Add(-time.Minute)
	eng := &tableEngine{
		ctrs:     []libpod.ListContainer{{ID: "c1", Labels: labelsOf(uid, "main", pod.RoleContainer), State: "running", StartedAt: started.Unix(), Pid: 10}},
		inspects: map[string]libpod.InspectContainer{"c1": {ID: "c1", State: libpod.ContainerState{Status: "running", Running: true, StartedAt: started}}},
	}
	b := tableBackend(t, eng)
	recordPod(b, p, true)
	ask := func() v1.ContainerStatus {
		st, err := b.Status(context.Background(), []*v1.Pod{p})
		if err != nil {
			t.Fatal(err)
		}
		return st[0].Containers[0]
	}
	if cs := ask(); cs.State.Running == nil {
		t.Fatalf("first status: %s, want running", stateString(cs))
	}
	l0, p0, i0 := eng.counts()
	for i := 0; i < 50; i++ {
		ask()
	}
	if l, pl, in := eng.counts(); l != l0 || pl != p0 || in != i0 {
		t.Fatalf("50 statuses of an unchanged pod made %d lists, %d pod lists, %d inspects; want none", l-l0, pl-p0, in-i0)
	}

	// The container exits: the view says running until the event, then asks the engine for this pod alone.
	eng.mu.Lock()
	eng.ctrs[0].State, eng.ctrs[0].ExitCode, eng.ctrs[0].ExitedAt, eng.ctrs[0].Pid = "exited", 3, time.Now().Unix(), 0
	eng.inspects["c1"] = libpod.InspectContainer{ID: "c1", State: libpod.ContainerState{Status: "exited", ExitCode: 3, StartedAt: started, FinishedAt: time.Now()}}
	eng.mu.Unlock()
	if cs := ask(); cs.State.Running == nil {
		t.Fatalf("before the event: %s, want the view's running", stateString(cs))
	}
	b.view.event(ctrEvent("c1", uid, "died"))
	cs := ask()
	if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 3 {
		t.Fatalf("after the died event: %s, want terminated with exit code 3", stateString(cs))
	}
	if l, pl, _ := eng.counts(); l != l0 || pl != p0+1 {
		t.Fatalf("the event cost %d lists and %d pod lists, want one pod list", l-l0, pl-p0)
	}
	// Events of other instances, exec events and infra-less noise mark nothing.
	other := ctrEvent("c1", uid, "died")
	other.Actor.Attributes[pod.LabelInstance] = "another"
	b.view.event(other)
	b.view.event(ctrEvent("c1", uid, "exec_died"))
	ask()
	if _, pl, _ := eng.counts(); pl != p0+1 {
		t.Fatalf("events of another instance or exec events made the pod stale")
	}
}

// An event never adds a pod to the view, and a removal only shows once the engine's list says so.
func TestViewNeverInventsNorForgets(t *testing.T) {
	eng := &tableEngine{}
	b := tableBackend(t, eng)
	p := newPod("ghost", busybox("main", "true"))
	uid := string(p.UID)
	b.view.event(ctrEvent("c9", uid, "create"))
	st, err := b.Status(context.Background(), []*v1.Pod{p})
	if err != nil {
		t.Fatal(err)
	}
	if c := st[0].Containers[0].State.Terminated; c == nil || c.Reason != pod.ReasonNotFound {
		t.Fatalf("a pod only an event named: %s, want NotFound (the engine lists nothing)", describe(st[0]))
	}
	recs, err := b.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Fatalf("List after an event alone: %v, want nothing", recs)
	}

	// On the engine now, and listed by a resync: kept until a list says it is gone, events or not.
	eng.mu.Lock()
	eng.ctrs = []libpod.ListContainer{{ID: "c9", Labels: labelsOf(uid, "main", pod.RoleContainer), State: "running", StartedAt: time.Now().Unix(), Pid: 3}}
	eng.mu.Unlock()
	if err := b.view.listAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if recs, _ := b.List(context.Background()); len(recs) != 1 || recs[0].UID != uid {
		t.Fatalf("List after the resync: %v, want pod %s", recs, uid)
	}
	b.view.event(ctrEvent("c9", uid, "remove")) // the event alone removes nothing: the engine still lists it
	if recs, _ := b.List(context.Background()); len(recs) != 1 {
		t.Fatalf("List after a remove event the engine does not bear out: %v, want the pod still", recs)
	}
}

// While the stream is down, the view answers for at most the freshness bound, then lists every pod at once.
func TestViewWithoutStreamListsOncePerFreshness(t *testing.T) {
	var pods []*v1.Pod
	eng := &tableEngine{}
	for i := 0; i < 10; i++ {
		p := newPod("down", busybox("main", "sleep 1"))
		pods = append(pods, p)
		eng.ctrs = append(eng.ctrs, libpod.ListContainer{ID: "c" + string(p.UID), Labels: labelsOf(string(p.UID), "main", pod.RoleContainer), State: "created"})
	}
	b := tableBackend(t, eng)
	b.view.disconnected(io.ErrUnexpectedEOF)
	now := time.Now()
	b.view.now = func() time.Time { return now }
	for _, p := range pods {
		recordPod(b, p, false)
	}
	for round := 0; round < 3; round++ {
		for _, p := range pods {
			if _, err := b.Status(context.Background(), []*v1.Pod{p}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if l, pl, _ := eng.counts(); l != 1 || pl != 0 {
		t.Fatalf("30 statuses within the bound, stream down: %d lists, %d pod lists; want 1 list", l, pl)
	}
	now = now.Add(3 * time.Second) // past the bound
	for _, p := range pods {
		if _, err := b.Status(context.Background(), []*v1.Pod{p}); err != nil {
			t.Fatal(err)
		}
	}
	if l, _, _ := eng.counts(); l != 2 {
		t.Fatalf("statuses past the bound made %d lists in all, want 2", l)
	}
}

// What Status makes of list and inspect results, container by container.
func TestStatusFromListAndInspect(t *testing.T) {
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	end := start.Add(10 * time.Second)
	cases := []struct {
		name     string
		policy   v1.RestartPolicy
		lc       libpod.ListContainer
		ins      libpod.InspectContainer
		events   []libpod.Event
		want     string
		lastExit int32 // -1: no lastState
	}{
		{"running", v1.RestartPolicyNever,
			libpod.ListContainer{State: "running", StartedAt: start.Unix(), Pid: 5},
			libpod.InspectContainer{State: libpod.ContainerState{Status: "running", Running: true, StartedAt: start}},
			nil, "running(restarts 0)", -1},
		{"exited with its code", v1.RestartPolicyNever,
			libpod.ListContainer{State: "exited", StartedAt: start.Unix(), ExitedAt: end.Unix(), ExitCode: 3},
			libpod.InspectContainer{State: libpod.ContainerState{Status: "exited", ExitCode: 3, StartedAt: start, FinishedAt: end}},
			nil, `terminated(3 Error "", restarts 0)`, -1},
		{"OOM killed", v1.RestartPolicyNever,
			libpod.ListContainer{State: "exited", StartedAt: start.Unix(), ExitedAt: end.Unix(), ExitCode: 137},
			libpod.InspectContainer{State: libpod.ContainerState{Status: "exited", ExitCode: 137, OOMKilled: true, StartedAt: start, FinishedAt: end}},
			nil, `terminated(137 OOMKilled "", restarts 0)`, -1},
		{"failed, to be restarted", v1.RestartPolicyOnFailure,
			libpod.ListContainer{State: "exited", StartedAt: start.Unix(), ExitedAt: end.Unix(), ExitCode: 1},
			libpod.InspectContainer{State: libpod.ContainerState{Status: "exited", ExitCode: 1, StartedAt: start, FinishedAt: end}, RestartCount: 2},
			nil, `waiting(CrashLoopBackOff "back-off restarting failed container", restarts 2)`, 1},
		{"restarted, last run from the died events", v1.RestartPolicyAlways,
			libpod.ListContainer{State: "running", StartedAt: end.Unix(), Pid: 9},
			libpod.InspectContainer{State: libpod.ContainerState{Status: "running", Running: true, StartedAt: end}, RestartCount: 1},
			[]libpod.Event{
				{Type: "container", Action: "start", TimeNano: start.UnixNano()},
				{Type: "container", Action: "died", TimeNano: start.Add(time.Second).UnixNano()},
			}, "running(restarts 1)", 4},
		{"created, not started", v1.RestartPolicyNever,
			libpod.ListContainer{State: "created"}, libpod.InspectContainer{},
			nil, `waiting(ContainerCreating "", restarts 0)`, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPod("table", busybox("main", "true"))
			p.Spec.RestartPolicy = tc.policy
			uid := string(p.UID)
			tc.lc.ID, tc.lc.Labels = "c1", labelsOf(uid, "main", pod.RoleContainer)
			tc.ins.ID = "c1"
			for i := range tc.events {
				tc.events[i].Actor.ID = "c1"
				if tc.events[i].Action == "died" {
					tc.events[i].Actor.Attributes = map[string]string{"containerExitCode": "4"}
				}
			}
			eng := &tableEngine{ctrs: []libpod.ListContainer{tc.lc}, inspects: map[string]libpod.InspectContainer{"c1": tc.ins}, events: tc.events}
			b := tableBackend(t, eng)
			recordPod(b, p, true)
			st, err := b.Status(context.Background(), []*v1.Pod{p})
			if err != nil {
				t.Fatal(err)
			}
			cs := st[0].Containers[0]
			if got := stateString(cs); got != tc.want {
				t.Errorf("status %s, want %s", got, tc.want)
			}
			switch {
			case tc.lastExit < 0 && cs.LastTerminationState.Terminated != nil:
				t.Errorf("lastState %+v, want none", cs.LastTerminationState.Terminated)
			case tc.lastExit >= 0 && (cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != tc.lastExit):
				t.Errorf("lastState %+v, want exit code %d", cs.LastTerminationState.Terminated, tc.lastExit)
			}
			// The phase List reports, worked out without the engine, agrees with Status's.
			_, _, before := eng.counts()
			recs, err := b.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, _, after := eng.counts(); after != before {
				t.Errorf("List inspected %d containers, want none", after-before)
			}
			if len(recs) != 1 || recs[0].Phase != pod.Phase(st[0]) {
				t.Errorf("List: %+v, want phase %s", recs, pod.Phase(st[0]))
			}
		})
	}
}

// The service ends the stream at every rotation of its events file: reconnected from before it ended, the
// view holds as it did (no list); past the freshness bound without a reconnection it lists. After a real
// outage, the pods listed before it are refreshed by one list of every pod, never by a list per pod.
func TestViewThroughStreamRotationAndReconnection(t *testing.T) {
	var pods []*v1.Pod
	eng := &tableEngine{}
	for i := 0; i < 10; i++ {
		p := newPod("rot", busybox("main", "sleep 1"))
		pods = append(pods, p)
		eng.ctrs = append(eng.ctrs, libpod.ListContainer{ID: "c" + string(p.UID), Labels: labelsOf(string(p.UID), "main", pod.RoleContainer), State: "created"})
	}
	b := tableBackend(t, eng)
	for _, p := range pods {
		recordPod(b, p, false)
	}
	now := time.Now()
	b.view.now = func() time.Time { return now }
	if err := b.view.listAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	askAll := func() {
		t.Helper()
		for _, p := range pods {
			if _, err := b.Status(context.Background(), []*v1.Pod{p}); err != nil {
				t.Fatal(err)
			}
		}
	}
	now = now.Add(time.Minute)
	askAll()
	l0, pl0, _ := eng.counts()

	// A rotation: the stream ends and is connected again at once from a little before.
	b.view.disconnected(nil)
	now = now.Add(100 * time.Millisecond)
	b.view.connected(now.Add(-2 * time.Second))
	select {
	case <-b.view.kick:
		t.Fatal("a reconnection from before the rotation asked for a resync")
	default:
	}
	askAll()
	if l, pl, _ := eng.counts(); l != l0 || pl != pl0 {
		t.Fatalf("statuses after a rotation: %d lists, %d pod lists; want none", l-l0, pl-pl0)
	}

	// Ended, and not reconnected within the bound: the view no longer trusts the stream.
	b.view.disconnected(nil)
	now = now.Add(3 * time.Second)
	askAll()
	if l, pl, _ := eng.counts(); l != l0+1 || pl != pl0 {
		t.Fatalf("statuses past the bound after the stream ended: %d lists, %d pod lists; want 1 list", l-l0, pl-pl0)
	}

	// A real outage, then a reconnection: what was listed before it is refreshed by one list of every pod.
	b.view.disconnected(io.ErrUnexpectedEOF)
	now = now.Add(time.Minute)
	b.view.connected(now.Add(-2 * time.Second))
	<-b.view.kick
	askAll()
	if l, pl, _ := eng.counts(); l != l0+2 || pl != pl0 {
		t.Fatalf("statuses after a reconnection: %d lists, %d pod lists; want 1 more list and no pod list", l-l0, pl-pl0)
	}
}

// rotatingEngine's stream delivers one event, late, then ends as Podman ends it at a rotation of its events
// file; the next connection stays open. It records the since of each connection.
type rotatingEngine struct {
	tableEngine
	event  libpod.Event
	mu     sync.Mutex
	sinces []time.Time
}

func (e *rotatingEngine) Events(ctx context.Context, opt libpod.EventOptions, fn func(libpod.Event) error) error {
	if !opt.Stream {
		return e.tableEngine.Events(ctx, opt, fn)
	}
	e.mu.Lock()
	e.sinces = append(e.sinces, opt.Since)
	first := len(e.sinces) == 1
	e.mu.Unlock()
	opt.Connected()
	if first {
		if err := fn(e.event); err != nil {
			return err
		}
		select {
		case <-time.After(1100 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func (e *rotatingEngine) connections() []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.sinces)
}

// Podman ends the stream at a rotation once it has read the old file; what was written to the new one
// meanwhile is only in a replay. Under load the stream runs seconds late, so the reconnection asks from
// before the last event it delivered, not from a little before now, and the view holds through it.
func TestViewReconnectsFromBeforeTheLastEvent(t *testing.T) {
	late := time.Now().Add(-10 * time.Second)
	eng := &rotatingEngine{}
	eng.event = ctrEvent("c1", "some-pod", "died")
	eng.event.TimeNano = late.UnixNano()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	v := newView(ctx, eng, map[string]string{pod.LabelInstance: tableInstance, pod.LabelBackend: "podman"}, 2*time.Second, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	v.run(ctx, &wg)
	deadline := time.Now().Add(10 * time.Second)
	for len(eng.connections()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the view did not connect the stream again after the service ended it")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sinces := eng.connections()
	if want := late.Add(-replayMargin); sinces[1].After(want) {
		t.Errorf("reconnected from %v, want at or before %v (the last event, less the margin)", sinces[1], want)
	}
	v.mu.Lock()
	since := v.since
	v.mu.Unlock()
	if !since.Equal(sinces[0]) {
		t.Errorf("the view's stream is taken as connected since %v after the reconnection, want %v: a replay from before the end covers the gap", since, sinces[0])
	}
}

// A running container that Podman never restarts (restart policy Never, or an init container) is reported
// from the list alone, its start to the second: a pod's first status costs no inspect. One that may restart
// is inspected for its restart count.
func TestRunningNeverRestartedWithoutInspect(t *testing.T) {
	started := time.Now().Add(-time.Minute).Truncate(time.Second)
	eng := &tableEngine{inspects: map[string]libpod.InspectContainer{}}
	var pods []*v1.Pod
	for i, policy := range []v1.RestartPolicy{v1.RestartPolicyNever, v1.RestartPolicyAlways} {
		p := newPod("first", busybox("main", "sleep 100"))
		p.Spec.RestartPolicy = policy
		id := "c" + strconv.Itoa(i)
		eng.ctrs = append(eng.ctrs, libpod.ListContainer{ID: id, Labels: labelsOf(string(p.UID), "main", pod.RoleContainer), State: "running", StartedAt: started.Unix(), Pid: 10 + i})
		eng.inspects[id] = libpod.InspectContainer{ID: id, RestartCount: 2, State: libpod.ContainerState{Status: "running", Running: true, StartedAt: started}}
		pods = append(pods, p)
	}
	b := tableBackend(t, eng)
	for _, p := range pods {
		recordPod(b, p, true)
	}
	st, err := b.Status(context.Background(), pods[:1])
	if err != nil {
		t.Fatal(err)
	}
	cs := st[0].Containers[0]
	if cs.State.Running == nil || !cs.State.Running.StartedAt.Time.Equal(started) || cs.RestartCount != 0 {
		t.Fatalf("restart policy Never: %s started %v, want running since %v", stateString(cs), cs.State.Running, started)
	}
	if _, _, in := eng.counts(); in != 0 {
		t.Fatalf("the first status of a running pod of restart policy Never made %d inspects, want none", in)
	}
	st, err = b.Status(context.Background(), pods[1:])
	if err != nil {
		t.Fatal(err)
	}
	if cs := st[0].Containers[0]; cs.RestartCount != 2 {
		t.Fatalf("restart policy Always: %s, want the inspect's 2 restarts", stateString(cs))
	}
}

// A list behind the engine (the event of a restart not yet in, or missed) still shows the run that failed;
// the inspect, newer, shows the run Podman started since, whose exit code reads 0. The status follows the
// inspect (running, never completed: interLink takes a completed pod for final), and the pod is listed again
// at its next status.
func TestStatusWhenTheListIsBehind(t *testing.T) {
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	again := start.Add(5 * time.Second)
	p := newPod("behind", busybox("main", "exit 1"))
	p.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	uid := string(p.UID)
	listed := libpod.ListContainer{ID: "c1", Labels: labelsOf(uid, "main", pod.RoleContainer), State: "exited", StartedAt: start.Unix(), ExitedAt: start.Add(time.Second).Unix(), ExitCode: 1}
	eng := &tableEngine{
		ctrs: []libpod.ListContainer{listed},
		inspects: map[string]libpod.InspectContainer{"c1": {ID: "c1", RestartCount: 1,
			State: libpod.ContainerState{Status: "running", Running: true, Pid: 42, StartedAt: again, FinishedAt: start.Add(time.Second)}}},
		events: []libpod.Event{
			{Type: "container", Action: "start", TimeNano: start.UnixNano()},
			{Type: "container", Action: "died", TimeNano: start.Add(time.Second).UnixNano()},
		},
	}
	for i := range eng.events {
		eng.events[i].Actor.ID = "c1"
	}
	eng.events[1].Actor.Attributes = map[string]string{"containerExitCode": "1"}
	b := tableBackend(t, eng)
	recordPod(b, p, true)
	for i := range 2 {
		st, err := b.Status(context.Background(), []*v1.Pod{p})
		if err != nil {
			t.Fatal(err)
		}
		cs := st[0].Containers[0]
		if cs.State.Running == nil || !cs.State.Running.StartedAt.Time.Equal(again) || cs.RestartCount != 1 {
			t.Fatalf("status %d: %s, want running since the restart at %v", i, stateString(cs), again)
		}
		if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
			t.Fatalf("status %d: last state %+v, want the failed run's exit code 1", i, last)
		}
	}
	if lists, podLists, _ := eng.counts(); lists+podLists != 2 {
		t.Fatalf("%d lists, want 2: the inspect that found the list behind marks the pod stale", lists+podLists)
	}
}

// On the service's own host, an event stamped before the pod's list (one delivered late) marks nothing: the
// list showed its change. One stamped after marks the pod stale as ever.
func TestViewLateEventOfAListedChange(t *testing.T) {
	p := newPod("late", busybox("main", "sleep 100"))
	uid := string(p.UID)
	eng := &tableEngine{ctrs: []libpod.ListContainer{{ID: "c1", Labels: labelsOf(uid, "main", pod.RoleContainer), State: "running", StartedAt: time.Now().Unix(), Pid: 7}}}
	b := tableBackend(t, eng)
	b.view.sameClock = true
	recordPod(b, p, true)
	now := time.Now()
	b.view.now = func() time.Time { return now }
	if err := b.view.listAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	ask := func() {
		t.Helper()
		if _, err := b.Status(context.Background(), []*v1.Pod{p}); err != nil {
			t.Fatal(err)
		}
	}
	late := ctrEvent("c1", uid, "start")
	late.TimeNano = now.Add(-time.Second).UnixNano()
	b.view.event(late)
	ask()
	if l, pl, _ := eng.counts(); l != 1 || pl != 0 {
		t.Fatalf("after an event older than the list: %d lists, %d pod lists; want the first list only", l, pl)
	}
	after := ctrEvent("c1", uid, "died")
	after.TimeNano = now.Add(time.Second).UnixNano()
	b.view.event(after)
	ask()
	if l, pl, _ := eng.counts(); l != 1 || pl != 1 {
		t.Fatalf("after an event newer than the list: %d lists, %d pod lists; want one pod list", l, pl)
	}
}

// An event applied while a list of its pod was on its way, stamped before that list was asked, leaves the
// pod fresh once the list is applied (on the service's host); one stamped after leaves it stale.
func TestViewEventDuringAList(t *testing.T) {
	p := newPod("during", busybox("main", "sleep 100"))
	uid := string(p.UID)
	eng := &tableEngine{ctrs: []libpod.ListContainer{{ID: "c1", Labels: labelsOf(uid, "main", pod.RoleContainer), State: "running", StartedAt: time.Now().Unix(), Pid: 7}}}
	b := tableBackend(t, eng)
	b.view.sameClock = true
	recordPod(b, p, true)
	now := time.Now()
	b.view.now = func() time.Time { return now.Add(-10 * time.Second) }
	if err := b.view.listAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.view.now = func() time.Time { return now }
	for _, c := range []struct {
		stamped time.Duration
		stale   bool
	}{{-time.Second, false}, {time.Second, true}} {
		b.view.mu.Lock()
		seq := b.view.seq
		b.view.mu.Unlock()
		e := ctrEvent("c1", uid, "start")
		e.TimeNano = now.Add(c.stamped).UnixNano()
		b.view.event(e)
		b.view.mu.Lock()
		b.view.applyPod(uid, eng.ctrs, now, seq, true)
		stale := !b.view.freshLocked(uid, now)
		b.view.mu.Unlock()
		if stale != c.stale {
			t.Errorf("an event stamped %v from the list's asking, applied during it: stale %v, want %v", c.stamped, stale, c.stale)
		}
	}
}

// Whatever the clocks, a list that has a container running since an event's second shows that event if it
// is part of the container's start; it never shows a died (nor a start that followed one).
func TestViewStartShownByTheList(t *testing.T) {
	p := newPod("shown", busybox("main", "sleep 100"))
	uid := string(p.UID)
	now := time.Now()
	listed := []libpod.ListContainer{{ID: "c1", Labels: labelsOf(uid, "main", pod.RoleContainer), State: "running", StartedAt: now.Unix(), Pid: 7}}
	eng := &tableEngine{ctrs: listed}
	b := tableBackend(t, eng)
	recordPod(b, p, true)
	if err := b.view.listAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		actions []string
		stale   bool
	}{{[]string{"create", "init", "start"}, false}, {[]string{"died", "start"}, true}, {[]string{"start"}, false}} {
		b.view.mu.Lock()
		seq := b.view.seq
		b.view.mu.Unlock()
		for _, a := range c.actions {
			e := ctrEvent("c1", uid, a)
			e.TimeNano = now.UnixNano()
			b.view.event(e)
		}
		b.view.mu.Lock()
		asked := time.Now()
		b.view.applyPod(uid, listed, asked, seq, true)
		stale := !b.view.freshLocked(uid, asked)
		b.view.mu.Unlock()
		if stale != c.stale {
			t.Errorf("events %v during a list that has the container running since their second: stale %v, want %v", c.actions, stale, c.stale)
		}
		if stale {
			if err := b.view.listPod(context.Background(), uid); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A batch with more pods stale by their events than lists per pod is refreshed by one list of their Podman
// pods, not by a list of every pod; each pod's status is then what that list says.
func TestBatchListsStalePodsTogether(t *testing.T) {
	eng := &tableEngine{}
	var pods []*v1.Pod
	for i := 0; i < 10; i++ {
		p := newPod("batch", busybox("main", "sleep 100"))
		pods = append(pods, p)
		eng.ctrs = append(eng.ctrs, libpod.ListContainer{ID: "c" + strconv.Itoa(i), PodName: podmanName(p), Labels: labelsOf(string(p.UID), "main", pod.RoleContainer), State: "created"})
	}
	b := tableBackend(t, eng)
	b.view.podName = func(uid string) string {
		if r := b.records[uid]; r != nil {
			return r.PodName
		}
		return ""
	}
	for _, p := range pods {
		recordPod(b, p, false)
	}
	if err := b.view.listAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Minute)
	eng.mu.Lock()
	for i := 0; i < 6; i++ {
		eng.ctrs[i].State, eng.ctrs[i].StartedAt, eng.ctrs[i].Pid = "running", started.Unix(), 100+i
	}
	eng.mu.Unlock()
	for i := 0; i < 6; i++ {
		e := ctrEvent("c"+strconv.Itoa(i), string(pods[i].UID), "died") // not a start: stale for sure
		b.view.event(e)
	}
	st, err := b.Status(context.Background(), pods)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range st {
		running := s.Containers[0].State.Running != nil
		if running != (i < 6) {
			t.Errorf("pod %d: %s, want running: %v", i, describe(s), i < 6)
		}
	}
	eng.mu.Lock()
	lists, podLists, podsLists := eng.lists, eng.podLists, eng.podsLists
	eng.mu.Unlock()
	if lists != 1 || podLists != 0 || podsLists != 1 {
		t.Fatalf("a batch with 6 stale pods: %d full lists (1 before it), %d pod lists, %d lists of pods; want 1 list of their pods", lists, podLists, podsLists)
	}
}

// An init container's run ends, for the launch, at its died event: Podman 4.3's wait answers only once the
// container is cleaned up, seconds late on a busy machine (and up to 20 s more). The engine's wait is then
// given up, and a wait that answers first still ends it.
func TestInitWaitEndsAtTheDiedEvent(t *testing.T) {
	waits := make(chan struct{}, 4)
	left := make(chan struct{}, 4)
	answer := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/wait") {
			http.NotFound(w, r)
			return
		}
		waits <- struct{}{}
		select {
		case <-r.Context().Done():
			left <- struct{}{}
		case <-answer:
			io.WriteString(w, "0")
		}
	}))
	defer srv.Close()
	api, err := libpod.New("tcp://"+srv.Listener.Addr().String(), "")
	if err != nil {
		t.Fatal(err)
	}
	b := tableBackend(t, &tableEngine{})
	b.api = api
	p := newPod("init-wait", busybox("main", "true"))

	died, release := b.view.exitSignal("c1")
	defer release()
	done := make(chan error, 1)
	go func() { done <- b.waitExit(context.Background(), "first", died) }()
	<-waits
	b.view.event(ctrEvent("c2", string(p.UID), "died")) // another container's end
	select {
	case err := <-done:
		t.Fatalf("the wait ended (%v) at the died event of another container", err)
	case <-time.After(100 * time.Millisecond):
	}
	b.view.event(ctrEvent("c1", string(p.UID), "died"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait did not end at the container's died event")
	}
	select {
	case <-left:
	case <-time.After(5 * time.Second):
		t.Fatal("the engine's wait was not given up")
	}

	// Without the event, the engine's answer ends it.
	died, release2 := b.view.exitSignal("c1")
	defer release2()
	go func() { done <- b.waitExit(context.Background(), "first", died) }()
	<-waits
	close(answer)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait did not end at the engine's answer")
	}
}
