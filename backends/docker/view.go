package docker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// view is the backend's live picture of its containers on the engine, so that a status, a log or a
// delete by remote id is answered without asking the engine what it already said. It is fed by full lists
// (at start, on every (re)connection of the event stream, every resync_interval, and on demand while the
// stream is down) and kept current by the engine's event stream: an event marks its pod dirty, and a dirty
// pod is listed again before it is answered for. So the view holds only what a list returned (it never
// invents a container) and drops a container only when a later list lacks it or the engine says it was
// destroyed (it never forgets one the engine has). A list clears a pod's events only once it shows them
// (see settleLocked).
type view struct {
	mu    sync.Mutex
	pods  map[string]map[string]container.Summary // by pod UID, then container id
	dirty map[string]uint64                       // pods an event touched since they were last listed: that event's number
	// lastEvent is the number of the last event about each pod, kept after it is listed (see unannounced).
	lastEvent map[string]uint64
	// gone are the pods a delete removed (forget), with the view's number then: a list begun before that
	// shows containers that no longer exist, and must not bring them back.
	gone map[string]uint64
	// pending are the events of each pod that no list has shown yet: the last of each container, by id.
	pending map[string]map[string]pendingEvent
	seq     uint64 // events applied and pods touched so far
	// applied counts the engine events taken in, for tests that must see the stream work.
	applied uint64
	// syncedAt is when the last full list began: the view is at least that fresh. It is zero before the first.
	syncedAt time.Time
	// streamUp says that every event since syncedAt has been applied and the stream is still open, so the
	// view is as fresh as the engine's events however old syncedAt is.
	streamUp bool
	now      func() time.Time
}

// pendingEvent is an event a list has yet to show, its number and when it came.
type pendingEvent struct {
	action events.Action
	seq    uint64
	at     time.Time
}

// settleTimeout is how long after an event a list that does not show it keeps the pod dirty.
const settleTimeout = 10 * time.Second

func newView() *view {
	return &view{pods: map[string]map[string]container.Summary{}, dirty: map[string]uint64{}, lastEvent: map[string]uint64{},
		gone: map[string]uint64{}, pending: map[string]map[string]pendingEvent{}, now: time.Now}
}

// fresh tells whether the view can answer for pods that are not dirty: every event since its last full
// list has been applied, or that list began less than maxAge ago.
func (v *view) fresh(now time.Time, maxAge time.Duration) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.freshLocked(now, maxAge)
}

func (v *view) freshLocked(now time.Time, maxAge time.Duration) bool {
	return !v.syncedAt.IsZero() && (v.streamUp || now.Sub(v.syncedAt) < maxAge)
}

// apply takes one container event into the view and returns the pod it concerns ("" when none): the pod is
// dirty until it is listed again, and a destroyed container leaves the view at once.
func (v *view) apply(m events.Message) string {
	if m.Type != events.ContainerEventType {
		return ""
	}
	uid := m.Actor.Attributes[pod.LabelPodUID]
	if uid == "" {
		return ""
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seq++
	v.applied++
	v.dirty[uid] = v.seq
	v.lastEvent[uid] = v.seq
	if v.pending[uid] == nil {
		v.pending[uid] = map[string]pendingEvent{}
	}
	v.pending[uid][m.Actor.ID] = pendingEvent{action: m.Action, seq: v.seq, at: v.now()}
	if m.Action == events.ActionDestroy {
		delete(v.pods[uid], m.Actor.ID)
		if len(v.pods[uid]) == 0 {
			delete(v.pods, uid)
		}
	}
	return uid
}

// mark returns the number of the last event applied, to pass to a replace with the list that follows.
func (v *view) mark() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seq
}

// replacePod puts the containers of pod uid that a list begun after event number seen returned in place of
// what the view had; the pod stays dirty if an event came since.
func (v *view) replacePod(uid string, cs []container.Summary, seen uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if g, ok := v.gone[uid]; ok && seen < g {
		return // begun before the pod's delete removed it all
	}
	byID := make(map[string]container.Summary, len(cs))
	for _, c := range cs {
		byID[c.ID] = c
	}
	if len(byID) == 0 {
		delete(v.pods, uid)
	} else {
		v.pods[uid] = byID
	}
	if v.settleLocked(uid, byID, seen) && v.dirty[uid] <= seen {
		delete(v.dirty, uid)
	}
}

// settleLocked drops the pending events of pod uid that a list begun after them (seen) shows in byID, and
// tells whether every event that list should show it shows. dockerd logs a container's die event before it
// has cleaned the container up and saved the state its lists read, seconds later on a loaded engine: a list
// begun at once can still show it running, and clearing the pod then held it running until the next
// resync. Such an event keeps the pod dirty, so that its next answer lists it again, for up to
// settleTimeout after it came; then the list is taken at its word.
func (v *view) settleLocked(uid string, byID map[string]container.Summary, seen uint64) bool {
	settled := true
	now := v.now()
	for id, e := range v.pending[uid] {
		c, listed := byID[id]
		switch {
		case e.seq > seen:
			// Not the list's to show; the pod stays dirty by its number anyway.
		case shows(c, listed, e.action) || now.Sub(e.at) > settleTimeout:
			delete(v.pending[uid], id)
		default:
			settled = false
		}
	}
	if len(v.pending[uid]) == 0 {
		delete(v.pending, uid)
	}
	return settled
}

// shows tells whether a list in which container c is (listed) or is not shows an event of it.
func shows(c container.Summary, listed bool, action events.Action) bool {
	switch action {
	case events.ActionCreate:
		return listed
	case events.ActionDestroy:
		return !listed
	case events.ActionStart, events.ActionRestart, events.ActionUnPause:
		return listed && c.State == container.StateRunning
	case events.ActionPause:
		return listed && c.State == container.StatePaused
	case events.ActionDie:
		return !listed || (c.State != container.StateRunning && c.State != container.StatePaused && c.State != container.StateRestarting)
	}
	return true // oom: nothing a list shows
}

// refOf names the pod of the containers cs (a pod's, by ID), from the labels of any of them.
func refOf(uid string, cs ...map[string]container.Summary) podRef {
	for _, m := range cs {
		for _, c := range m {
			return podRef{uid: uid, namespace: c.Labels[pod.LabelNamespace], name: c.Labels[pod.LabelPodName]}
		}
	}
	return podRef{uid: uid}
}

// replaceAll puts the result of a full list, begun at start after event number seen, in place of the
// whole view. It returns the pods whose containers differ from what the view held while no event said
// so: a stream that missed events without breaking.
func (v *view) replaceAll(cs []container.Summary, start time.Time, seen uint64) (diverged []podRef) {
	next := map[string]map[string]container.Summary{}
	for _, c := range cs {
		uid := c.Labels[pod.LabelPodUID]
		if next[uid] == nil {
			next[uid] = map[string]container.Summary{}
		}
		next[uid][c.ID] = c
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for uid, g := range v.gone {
		if seen < g {
			delete(next, uid) // begun before the pod's delete removed it all
		} else {
			delete(v.gone, uid)
		}
	}
	if v.streamUp {
		for uid := range unionKeys(v.pods, next) {
			if _, touched := v.dirty[uid]; !touched && !sameContainers(v.pods[uid], next[uid]) {
				diverged = append(diverged, refOf(uid, next[uid], v.pods[uid]))
			}
		}
	}
	v.pods = next
	for uid, n := range v.dirty {
		if v.settleLocked(uid, next[uid], seen) && n <= seen {
			delete(v.dirty, uid)
		}
	}
	for uid, n := range v.lastEvent {
		if _, ok := next[uid]; !ok && n <= seen {
			delete(v.lastEvent, uid) // gone since its last event
		}
	}
	v.syncedAt = start
	return diverged
}

// touch marks pod uid dirty: the backend changed it and its next answer must list it.
func (v *view) touch(uid string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seq++
	v.dirty[uid] = v.seq
}

// forget drops pod uid from the view: Delete removed all of it. A list begun before does not bring it
// back; an event that comes later marks it dirty, and a list then finds it gone.
func (v *view) forget(uid string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.pods, uid)
	delete(v.pending, uid)
	v.seq++
	v.gone[uid] = v.seq
}

// unannounced returns those of pods that no event has named since event number seq.
func (v *view) unannounced(pods []podRef, seq uint64) []podRef {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []podRef
	for _, ref := range pods {
		if v.lastEvent[ref.uid] <= seq {
			out = append(out, ref)
		}
	}
	return out
}

// setStream records that the event stream is open and has been since the last full list began (up), or
// that it broke.
func (v *view) setStream(up bool) {
	v.mu.Lock()
	v.streamUp = up
	v.mu.Unlock()
}

// pod returns what the view holds of pod uid, and whether that is current: the view is fresh and no
// event touched the pod since it was listed.
func (v *view) pod(uid string, now time.Time, maxAge time.Duration) (*podContainers, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, dirty := v.dirty[uid]
	return v.groupLocked(uid), v.freshLocked(now, maxAge) && !dirty
}

func (v *view) groupLocked(uid string) *podContainers {
	cs := make([]container.Summary, 0, len(v.pods[uid]))
	for _, c := range v.pods[uid] {
		cs = append(cs, c)
	}
	if pc := groupByPod(cs)[uid]; pc != nil {
		return pc
	}
	return nil
}

// all returns every pod of the view, and whether all of it is current.
func (v *view) all(now time.Time, maxAge time.Duration) (map[string]*podContainers, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]*podContainers, len(v.pods))
	for uid := range v.pods {
		if pc := v.groupLocked(uid); pc != nil {
			out[uid] = pc
		}
	}
	return out, v.freshLocked(now, maxAge) && len(v.dirty) == 0
}

// byID finds a container of the view by id, when the view is fresh.
func (v *view) byID(id string, now time.Time, maxAge time.Duration) (container.Summary, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.freshLocked(now, maxAge) {
		return container.Summary{}, false
	}
	for uid, cs := range v.pods {
		if _, dirty := v.dirty[uid]; dirty {
			continue
		}
		if c, ok := cs[id]; ok {
			return c, true
		}
	}
	return container.Summary{}, false
}

func unionKeys(a, b map[string]map[string]container.Summary) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// sameContainers tells whether two listings of one pod show the same containers in the same states.
func sameContainers(a, b map[string]container.Summary) bool {
	if len(a) != len(b) {
		return false
	}
	for id, c := range a {
		if d, ok := b[id]; !ok || d.State != c.State {
			return false
		}
	}
	return true
}

// viewEvents are the container events that change what a list shows (a container made, started, ended,
// paused, destroyed) or what an inspect says of its end (oom).
var viewEvents = []events.Action{events.ActionCreate, events.ActionStart, events.ActionDie, events.ActionDestroy,
	events.ActionPause, events.ActionUnPause, events.ActionRestart, events.ActionOOM}

// eventFilter selects the container events of this backend and dispatcher instance that matter to the view.
func (b *Backend) eventFilter() filters.Args {
	f := b.ownFilter()
	f.Add("type", string(events.ContainerEventType))
	for _, a := range viewEvents {
		f.Add("event", string(a))
	}
	return f
}

// sinceMargin is how far before a (re)connection the event stream is asked to start: the engine stamps its
// events with its own clock, which may be a little behind the backend's.
const sinceMargin = 5 * time.Second

// missSlack is how long after a list the event of a change it showed may still be on its way.
const missSlack = 5 * time.Second

// streamSettle is how long a new event stream must stay open to be taken as up.
const streamSettle = time.Second

// watchEvents keeps the view current for the backend's lifetime: it opens the engine's event stream, lists
// everything (so no event between the list and the stream is lost: the stream starts before the list),
// then applies events as they come, with a full list every resync_interval. A broken stream is logged once,
// and repaired by reconnecting and listing again; meanwhile answers list the engine at most once per
// status_max_age.
func (b *Backend) watchEvents() {
	defer close(b.watchDone)
	broken := false
	for b.ctx.Err() == nil {
		err := b.followEvents(func() {
			if broken {
				b.log.Info("the Docker Engine's event stream is back; the view was listed again")
				broken = false
			}
		})
		b.view.setStream(false)
		if b.ctx.Err() != nil {
			return
		}
		if !broken {
			b.log.Warn("the Docker Engine's event stream broke; statuses list the engine (at most once per status_max_age) until it is back",
				"err", err, "status_max_age", b.cfg.StatusMaxAge.D())
			broken = true
		}
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// followEvents opens the event stream, lists everything, calls up, and applies events until the stream
// ends; it returns why it ended.
func (b *Backend) followEvents(up func()) error {
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	since := time.Now().Add(-sinceMargin)
	msgs, errs := b.cli.Events(ctx, events.ListOptions{Filters: b.eventFilter(),
		Since: fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())})
	if err := b.resync(ctx, time.Time{}); err != nil {
		return err
	}
	// The engine answers a subscription at once, and refuses one at once: a stream still open after
	// streamSettle is up. Until then the list just made answers.
	settled := time.NewTimer(streamSettle)
	defer settled.Stop()
	tick := time.NewTicker(b.cfg.ResyncInterval.D())
	defer tick.Stop()
	for {
		select {
		case <-settled.C:
			b.view.setStream(true)
			up()
		case m := <-msgs:
			b.applyEvent(m)
		case err := <-errs:
			if err == nil {
				err = fmt.Errorf("the stream ended")
			}
			return err
		case <-tick.C:
			if err := b.resync(ctx, time.Time{}); err != nil {
				return err
			}
		}
	}
}

// applyEvent takes an event into the view, and drops what the inspect cache knows of a container the event
// says has changed in a way its list state may not show (destroyed, OOM-killed).
func (b *Backend) applyEvent(m events.Message) {
	if b.view.apply(m) == "" {
		return
	}
	switch m.Action {
	case events.ActionDestroy, events.ActionOOM:
		b.inspects.forget(m.Actor.ID)
	}
}

// resync lists every container of the instance into the view. Callers that asked for a list not older than
// after share the list of whoever got there first.
func (b *Backend) resync(ctx context.Context, after time.Time) error {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	if !after.IsZero() {
		b.view.mu.Lock()
		done := !b.view.syncedAt.Before(after)
		b.view.mu.Unlock()
		if done {
			return nil
		}
	}
	start, seen := time.Now(), b.view.mark()
	t := time.Now()
	cs, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: b.ownFilter()})
	b.metrics.observe("container_list", t, err)
	if err != nil {
		return err
	}
	b.inspects.prune(cs)
	if diverged := b.view.replaceAll(cs, start, seen); len(diverged) > 0 {
		// The engine can show a change in a list before its event reaches the stream: a change missed by
		// the stream is one whose event has not come missSlack after the list.
		at := b.view.mark()
		time.AfterFunc(missSlack, func() {
			if missed := b.view.unannounced(diverged, at); len(missed) > 0 {
				b.podLog(missed[0]).Warn("the view of the engine differed from a full list without an event saying so; it follows the list",
					"pods", len(missed))
			}
		})
	}
	return nil
}

// ensureFresh lists the engine when the view cannot answer by itself (the event stream is down and the last
// list is older than status_max_age); concurrent callers share one list.
func (b *Backend) ensureFresh(ctx context.Context) error {
	now := time.Now()
	if b.view.fresh(now, b.cfg.StatusMaxAge.D()) {
		return nil
	}
	return b.resync(ctx, now.Add(-b.cfg.StatusMaxAge.D()))
}

// viewPod returns the containers of pod uid, from the view when it is current for that pod, else
// from a list of the pod (which refreshes the view). It is nil for a pod with no container.
func (b *Backend) viewPod(ctx context.Context, uid string) (*podContainers, error) {
	if err := b.ensureFresh(ctx); err != nil {
		return nil, err
	}
	if pc, ok := b.view.pod(uid, time.Now(), b.cfg.StatusMaxAge.D()); ok {
		return pc, nil
	}
	pc, err := b.listPod(ctx, uid)
	if err != nil || (pc.pause == nil && len(pc.runs) == 0) {
		return nil, err
	}
	return pc, nil
}

// viewPods is viewPod for a batch: the pods that need a list get one list of them all when there are more
// than one.
func (b *Backend) viewPods(ctx context.Context, uids []string) (map[string]*podContainers, error) {
	if err := b.ensureFresh(ctx); err != nil {
		return nil, err
	}
	out := make(map[string]*podContainers, len(uids))
	var stale []string
	for _, uid := range uids {
		pc, ok := b.view.pod(uid, time.Now(), b.cfg.StatusMaxAge.D())
		if !ok {
			stale = append(stale, uid)
			continue
		}
		if pc != nil {
			out[uid] = pc
		}
	}
	if len(stale) > 1 {
		if err := b.resync(ctx, time.Now()); err != nil {
			return nil, err
		}
		still := stale[:0]
		for _, uid := range stale {
			pc, ok := b.view.pod(uid, time.Now(), b.cfg.StatusMaxAge.D())
			if !ok {
				still = append(still, uid)
				continue
			}
			if pc != nil {
				out[uid] = pc
			}
		}
		stale = still
	}
	for _, uid := range stale {
		pc, err := b.listPod(ctx, uid)
		if err != nil {
			return nil, err
		}
		if pc.pause != nil || len(pc.runs) > 0 {
			out[uid] = pc
		}
	}
	return out, nil
}
