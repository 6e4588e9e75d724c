package docker

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

func summary(uid, id, name string, attempt string, state container.ContainerState) container.Summary {
	labels := map[string]string{pod.LabelPodUID: uid, pod.LabelContainer: name, labelAttempt: attempt, pod.LabelRole: pod.RoleContainer}
	if name == "POD" {
		labels[pod.LabelRole] = pod.RolePause
	}
	return container.Summary{ID: id, State: state, Labels: labels}
}

func event(action events.Action, uid, id string) events.Message {
	return events.Message{Type: events.ContainerEventType, Action: action,
		Actor: events.Actor{ID: id, Attributes: map[string]string{pod.LabelPodUID: uid}}}
}

// The view answers for a pod without the engine only while it is fresh and no event touched the pod since it
// was listed; it holds only what a list returned, and drops a container only on a list without it or its
// destroy event.
func TestViewFromListsAndEvents(t *testing.T) {
	const maxAge = 2 * time.Second
	now := time.Now()
	type step struct {
		do        func(v *view)
		uid       string
		wantFresh bool
		wantIDs   []string // the pod's containers in the view, pause first
	}
	list := func(cs ...container.Summary) func(v *view) {
		return func(v *view) { v.replaceAll(cs, now, v.mark()); v.setStream(true) }
	}
	apply := func(m events.Message) func(v *view) { return func(v *view) { v.apply(m) } }
	cases := []struct {
		name  string
		steps []step
	}{
		{"a listed pod is fresh", []step{
			{do: list(summary("a", "p1", "POD", "0", "running"), summary("a", "c1", "main", "0", "running")),
				uid: "a", wantFresh: true, wantIDs: []string{"p1", "c1"}},
		}},
		{"an unlisted pod is fresh and empty: the view invents nothing", []step{
			{do: list(summary("a", "p1", "POD", "0", "running")), uid: "b", wantFresh: true},
		}},
		{"an event makes its pod stale, not another", []step{
			{do: list(summary("a", "p1", "POD", "0", "running"), summary("b", "p2", "POD", "0", "running"))},
			{do: apply(event(events.ActionDie, "a", "p1")), uid: "a", wantFresh: false, wantIDs: []string{"p1"}},
			{uid: "b", wantFresh: true, wantIDs: []string{"p2"}},
		}},
		{"a create event of a container no list showed adds nothing, it only makes the pod stale", []step{
			{do: list(summary("a", "p1", "POD", "0", "running"))},
			{do: apply(event(events.ActionCreate, "a", "c9")), uid: "a", wantFresh: false, wantIDs: []string{"p1"}},
		}},
		{"a destroy event drops the container at once", []step{
			{do: list(summary("a", "p1", "POD", "0", "running"), summary("a", "c1", "main", "0", "exited"))},
			{do: apply(event(events.ActionDestroy, "a", "c1")), uid: "a", wantFresh: false, wantIDs: []string{"p1"}},
		}},
		{"a list of the pod makes it fresh again", []step{
			{do: list(summary("a", "p1", "POD", "0", "running"))},
			{do: apply(event(events.ActionStart, "a", "c1"))},
			{do: func(v *view) {
				v.replacePod("a", []container.Summary{summary("a", "p1", "POD", "0", "running"), summary("a", "c1", "main", "0", "running")}, v.mark())
			}, uid: "a", wantFresh: true, wantIDs: []string{"p1", "c1"}},
		}},
		{"an event during a pod's list keeps the pod stale", []step{
			{do: list(summary("a", "p1", "POD", "0", "running"))},
			{do: func(v *view) {
				seen := v.mark()
				v.apply(event(events.ActionDie, "a", "p1")) // while the list was on its way
				v.replacePod("a", []container.Summary{summary("a", "p1", "POD", "0", "running")}, seen)
			}, uid: "a", wantFresh: false, wantIDs: []string{"p1"}},
		}},
		{"an event during a full list keeps its pod stale", []step{
			{do: func(v *view) {
				seen := v.mark()
				v.apply(event(events.ActionCreate, "a", "c1"))
				v.replaceAll([]container.Summary{summary("a", "p1", "POD", "0", "running")}, now, seen)
				v.setStream(true)
			}, uid: "a", wantFresh: false, wantIDs: []string{"p1"}},
		}},
		{"a full list forgets what the engine no longer has", []step{
			{do: list(summary("a", "p1", "POD", "0", "running"), summary("a", "c1", "main", "0", "exited"))},
			{do: list(summary("a", "p1", "POD", "0", "running")), uid: "a", wantFresh: true, wantIDs: []string{"p1"}},
		}},
		{"a broken stream leaves the view fresh for status_max_age after its last list only", []step{
			{do: func(v *view) {
				v.replaceAll([]container.Summary{summary("a", "p1", "POD", "0", "running")}, now.Add(-maxAge-time.Millisecond), v.mark())
				v.setStream(false)
			}, uid: "a", wantFresh: false, wantIDs: []string{"p1"}},
			{do: func(v *view) {
				v.replaceAll([]container.Summary{summary("a", "p1", "POD", "0", "running")}, now, v.mark())
			},
				uid: "a", wantFresh: true, wantIDs: []string{"p1"}},
		}},
		{"nothing is fresh before the first list", []step{
			{do: func(v *view) { v.setStream(true) }, uid: "a", wantFresh: false},
		}},
		{"a pod Create touched is stale until listed", []step{
			{do: list()},
			{do: func(v *view) { v.touch("a") }, uid: "a", wantFresh: false},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newView()
			for i, s := range tc.steps {
				if s.do != nil {
					s.do(v)
				}
				if s.uid == "" {
					continue
				}
				pc, fresh := v.pod(s.uid, now, maxAge)
				if fresh != s.wantFresh {
					t.Errorf("step %d: pod %s fresh = %v, want %v", i, s.uid, fresh, s.wantFresh)
				}
				var ids []string
				if pc != nil {
					if pc.pause != nil {
						ids = append(ids, pc.pause.ID)
					}
					for _, runs := range pc.runs {
						for _, r := range runs {
							ids = append(ids, r.ID)
						}
					}
				}
				if len(ids) != len(s.wantIDs) {
					t.Fatalf("step %d: pod %s has containers %v in the view, want %v", i, s.uid, ids, s.wantIDs)
				}
				for j := range ids {
					if ids[j] != s.wantIDs[j] {
						t.Errorf("step %d: pod %s has containers %v in the view, want %v", i, s.uid, ids, s.wantIDs)
					}
				}
			}
		})
	}
}

// A full list that differs from the view where no event said so is a stream that missed events: the view
// reports those pods (to log it) and follows the list.
func TestViewNoticesMissedEvents(t *testing.T) {
	v := newView()
	now := time.Now()
	v.replaceAll([]container.Summary{summary("a", "p1", "POD", "0", "running"), summary("b", "p2", "POD", "0", "running")}, now, v.mark())
	v.setStream(true)
	v.apply(event(events.ActionDie, "b", "p2")) // b changed and said so
	exited := summary("a", "p1", "POD", "0", "exited")
	exited.Labels[pod.LabelNamespace], exited.Labels[pod.LabelPodName] = "ns", "web"
	diverged := v.replaceAll([]container.Summary{exited, summary("b", "p2", "POD", "0", "exited")}, now, v.mark())
	if len(diverged) != 1 || diverged[0] != (podRef{uid: "a", namespace: "ns", name: "web"}) {
		t.Errorf("diverged pods = %+v, want [a of ns/web]: only a changed without an event (and the log names it)", diverged)
	}
	if pc, _ := v.pod("a", now, time.Second); pc == nil || pc.pause == nil || pc.pause.State != "exited" {
		t.Errorf("the view did not follow the list: %+v", pc)
	}
	// A change the list showed before its event came is no missed event: only one whose event never comes
	// is reported.
	at := v.mark()
	if missed := v.unannounced(diverged, at); len(missed) != 1 {
		t.Errorf("unannounced before any event = %+v, want a", missed)
	}
	v.apply(event(events.ActionDie, "a", "p1"))
	if missed := v.unannounced(diverged, at); len(missed) != 0 {
		t.Errorf("unannounced after a's late event = %+v, want none", missed)
	}
}

// A delete forgets its pod. A list begun before the delete ended and answered after shows containers since
// removed: it must not bring them back (the view never invents a container), nor call them a missed event.
// A list begun after is the engine's word again.
func TestViewForgetOutlivesAnEarlierList(t *testing.T) {
	v := newView()
	now := time.Now()
	cs := []container.Summary{summary("a", "p1", "POD", "0", "running"), summary("a", "c1", "main", "0", "running")}
	v.replaceAll(cs, now, v.mark())
	v.setStream(true)
	seen := v.mark() // lists begun now
	v.forget("a")
	if diverged := v.replaceAll(cs, now, seen); len(diverged) != 0 {
		t.Errorf("a list begun before the delete: diverged %+v, want none", diverged)
	}
	if pc, fresh := v.pod("a", now, time.Second); pc != nil || !fresh {
		t.Errorf("after a full list begun before the delete: %+v (fresh %v), want nothing, fresh", pc, fresh)
	}
	v.replacePod("a", cs, seen)
	if pc, fresh := v.pod("a", now, time.Second); pc != nil || !fresh {
		t.Errorf("after a list of the pod begun before the delete: %+v (fresh %v), want nothing, fresh", pc, fresh)
	}
	v.replaceAll(cs, now, v.mark())
	if pc, _ := v.pod("a", now, time.Second); pc == nil || len(pc.runs) != 1 {
		t.Errorf("a list begun after the delete: %+v, want the pod it shows", pc)
	}
}

// Events of other kinds, or of containers without a pod label, are not the view's.
func TestViewIgnoresForeignEvents(t *testing.T) {
	v := newView()
	v.replaceAll(nil, time.Now(), v.mark())
	v.setStream(true)
	if uid := v.apply(events.Message{Type: events.NetworkEventType, Action: "connect",
		Actor: events.Actor{ID: "n", Attributes: map[string]string{pod.LabelPodUID: "a"}}}); uid != "" {
		t.Errorf("a network event concerned pod %q", uid)
	}
	if uid := v.apply(events.Message{Type: events.ContainerEventType, Action: events.ActionDie, Actor: events.Actor{ID: "x"}}); uid != "" {
		t.Errorf("an event without a pod label concerned pod %q", uid)
	}
	if _, fresh := v.all(time.Now(), time.Second); !fresh {
		t.Error("foreign events made the view stale")
	}
}

// The view's two config keys: status_max_age defaults to 2 s (the freshness the README promises),
// resync_interval to 30 s; neither may be negative.
func TestViewConfig(t *testing.T) {
	c, _, err := ParseConfig("docker", nil)
	if err != nil || c.StatusMaxAge.D() != 2*time.Second || c.ResyncInterval.D() != 30*time.Second {
		t.Errorf("defaults: status_max_age %s, resync_interval %s, %v", c.StatusMaxAge, c.ResyncInterval, err)
	}
	c, _, err = ParseConfig("docker", []byte(`{"status_max_age":"500ms","resync_interval":"1m"}`))
	if err != nil || c.StatusMaxAge.D() != 500*time.Millisecond || c.ResyncInterval.D() != time.Minute {
		t.Errorf("parsed: status_max_age %s, resync_interval %s, %v", c.StatusMaxAge, c.ResyncInterval, err)
	}
	for _, raw := range []string{`{"status_max_age":"-1s"}`, `{"resync_interval":"-1s"}`} {
		if _, _, err := ParseConfig("docker", []byte(raw)); err == nil {
			t.Errorf("%s was accepted", raw)
		}
	}
}

// dockerd logs a container's die event before it saves the state its lists read: a list begun right after
// the event can still show the container running. That list does not clear the pod, whose next answer lists
// it again, until a list shows the exit, or settleTimeout after the event (then the list is believed).
func TestViewWaitsForAListThatShowsTheEvent(t *testing.T) {
	v := newView()
	now := time.Now()
	v.now = func() time.Time { return now }
	running := []container.Summary{summary("a", "p1", "POD", "0", "running"), summary("a", "c1", "main", "0", "running")}
	exited := []container.Summary{summary("a", "p1", "POD", "0", "running"), summary("a", "c1", "main", "0", "exited")}
	v.replaceAll(running, now, v.mark())
	v.setStream(true)
	v.apply(event(events.ActionDie, "a", "c1"))

	v.replacePod("a", running, v.mark()) // begun after the event, answered before dockerd saved the exit
	if _, fresh := v.pod("a", now, time.Second); fresh {
		t.Fatal("a list that still shows the container running cleared its die event")
	}
	v.replaceAll(running, now, v.mark())
	if _, fresh := v.pod("a", now, time.Second); fresh {
		t.Fatal("a full list that still shows the container running cleared its die event")
	}
	v.replacePod("a", exited, v.mark())
	if pc, fresh := v.pod("a", now, time.Second); !fresh || pc.runs["main"][0].State != "exited" {
		t.Fatalf("a list showing the exit: %+v (fresh %v), want the exit, fresh", pc, fresh)
	}

	// Past settleTimeout, the list is believed whatever it shows.
	v.apply(event(events.ActionStart, "a", "c2"))
	v.replacePod("a", exited, v.mark())
	if _, fresh := v.pod("a", now, time.Second); fresh {
		t.Fatal("a list without the started container cleared its start event")
	}
	now = now.Add(settleTimeout + time.Second)
	v.replacePod("a", exited, v.mark())
	if _, fresh := v.pod("a", now, time.Second); !fresh {
		t.Fatal("a list past settleTimeout did not clear the pod")
	}
}
