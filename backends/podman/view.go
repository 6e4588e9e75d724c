package podman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// view is the backend's live picture of its containers on Podman, so that a Status does not list the engine
// per call. It holds what the engine listed, per pod, and is kept true by libpod's event stream (filtered by
// this instance's label): an event never changes the picture itself, it marks the pod it names stale, and the
// next question about that pod asks the engine again (one list of that pod). So the view never invents a
// container nor forgets one the engine listed: only engine lists put containers in it or take them out.
//
// A pod's entry answers without an engine call while it is not stale and either the stream has been
// connected since before the entry was listed (every later change then has an event that would have marked
// it), or it was listed less than freshness ago. While the stream is down, stale entries are refreshed by one
// list of every pod, at most once per freshness. A full list also runs every resync interval and when the
// stream (re)connects; a break of the stream is logged once per outage, and a resync that finds a change the
// stream never announced logs it once and reconnects the stream.
type view struct {
	eng       stateEngine
	labels    map[string]string // instance and backend: everything this backend made carries them
	freshness time.Duration
	resync    time.Duration
	log       *slog.Logger
	now       func() time.Time
	ctx       context.Context // the backend's lifetime: lists in flight run under it, not under a caller's

	// sameClock is set when the service runs on this host (a unix socket): its events' times and the view's
	// clock agree, so an event timed before a pod's list is one the list already showed (see event).
	sameClock bool

	kick chan struct{} // asks the resync loop for a full list now
	// onList, when set, is told the ids of every container a full list found (outside the view's lock).
	onList func(seen map[string]bool)
	// podName, when set, names the Podman pod of a pod UID the backend has recorded ("" otherwise), so that
	// several stale pods are listed by one list of their Podman pods (see containers).
	podName func(uid string) string

	mu     sync.Mutex
	pods   map[string]*podView // by pod UID
	ctrSeq map[string]uint64   // by container id: the seq of its last event
	seq    uint64              // events applied so far
	listed time.Time           // when the last full list applied was asked; zero before the first
	lseq   uint64              // seq when it was asked
	// since is the time from which the connected stream delivers every event (it is asked from a little
	// before it connected); zero while the stream is down.
	since time.Time
	// gapFrom is when a stream the service ended (it does on every rotation of its events file) ended,
	// zero otherwise: since is kept through the reconnection, whose replay from before the last event
	// delivered covers the gap, but only for freshness (see streamingLocked).
	gapFrom time.Time
	// lastEvent is the time of the latest event the stream delivered: a reconnection asks from before it.
	lastEvent    time.Time
	broken       bool // the stream's outage was logged
	missedLogged bool // a change the stream missed was logged
	reconnect    context.CancelFunc
	full         *flight
	one          map[string]*flight
	// exits are the channels to close at a died event, by container id (see exitSignal).
	exits map[string][]chan struct{}
}

// podView is what the engine listed for one pod: its containers (the infra one included), when, and the
// seq of the last event about it.
type podView struct {
	ctrs []libpod.ListContainer
	at   time.Time
	// atSeq is the view's seq when the list was asked; evSeq the seq of the pod's last event. A pod with
	// evSeq > atSeq is stale. A pod made by an event alone has a zero at: stale too.
	atSeq, evSeq uint64
	// recent are the pod's events since its list was asked (at most maxRecent; overflow once more came),
	// so that a list applied after them can tell whether it shows them (see settle).
	recent   []podEvent
	overflow bool
	// alone is set when the entry came from a list of this pod only: an empty one confirms the pod has
	// nothing on the engine (a full list of Podman 4.3 can miss a container it is cleaning up).
	alone bool
}

// podEvent is what settle needs of one event.
type podEvent struct {
	seq      uint64
	id       string
	action   string
	timeNano int64
}

// maxRecent bounds the events kept per pod for settle; a pod with more waits for a list asked after them.
const maxRecent = 16

type flight struct {
	done chan struct{}
	err  error
	seq  uint64 // the view's seq when the list was asked
}

// perPodLists is how many stale pods one Status refreshes by a list each; more take one list of every pod.
const perPodLists = 4

// listTimeout bounds one list the view asks: it runs under the backend's context, shared by every caller.
const listTimeout = time.Minute

func newView(ctx context.Context, eng stateEngine, labels map[string]string, freshness, resync time.Duration, log *slog.Logger) *view {
	return &view{
		eng: eng, labels: labels, freshness: freshness, resync: resync, log: log, now: time.Now, ctx: ctx,
		kick: make(chan struct{}, 1), pods: map[string]*podView{}, ctrSeq: map[string]uint64{}, one: map[string]*flight{},
		exits: map[string][]chan struct{}{},
	}
}

// run keeps the view true until ctx ends: the event stream, and a full list every resync interval and
// whenever the stream (re)connects.
func (v *view) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		v.watch(ctx)
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(v.resync)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-v.kick:
			}
			err := v.listAll(ctx)
			switch {
			case err != nil && ctx.Err() == nil && !failing:
				v.log.Warn("cannot list the backend's containers on Podman to resync the status view; answering from the engine per call until it can", "err", err)
				failing = true
			case err == nil && failing:
				v.log.Info("the status view is listed from Podman again")
				failing = false
			}
		}
	}()
}

// watch follows the event stream, reconnecting after a break with a growing delay.
func (v *view) watch(ctx context.Context) {
	delay := time.Second
	for ctx.Err() == nil {
		// From a little before the connection: Podman may start reading its events after it answered, and
		// an event seen twice only marks a pod stale once more. And from before the last event delivered:
		// Podman ends a stream at each rotation of its events file once it has read the old file, and what
		// was written to the new one meanwhile (the event that rotated it first) is only in a replay; under
		// load that end comes seconds after the rotation. Events are stamped before they are written, in
		// an order the file need not keep: hence the margin.
		since := v.now().Add(-replayMargin)
		sctx, cancel := context.WithCancel(ctx)
		v.mu.Lock()
		if !v.lastEvent.IsZero() && v.lastEvent.Add(-replayMargin).Before(since) {
			since = v.lastEvent.Add(-replayMargin)
		}
		v.reconnect = cancel
		v.mu.Unlock()
		started := time.Now()
		err := v.eng.Events(sctx, libpod.EventOptions{
			Stream:    true,
			Since:     since,
			Filters:   map[string][]string{"type": {"container"}, "label": {pod.LabelInstance + "=" + v.labels[pod.LabelInstance]}},
			Connected: func() { v.connected(since) },
		}, func(e libpod.Event) error {
			v.event(e)
			return nil
		})
		deliberate := sctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		if deliberate {
			// Reconnected by the view itself (a resync found a change the stream missed; logged there).
			continue
		}
		if err == nil && time.Since(started) > time.Second {
			// Podman ends the stream when it rotates its events file (every megabyte of events: every
			// minute or so under load), keeping the newer half: connect again at once, asking the events
			// since a little before, which replays whatever came meanwhile (see connected).
			v.disconnected(nil)
			delay = time.Second
			continue
		}
		if err == nil {
			err = errors.New("the service ended the event stream as soon as it began")
		}
		v.disconnected(err)
		if time.Since(started) > time.Minute {
			delay = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

func (v *view) connected(since time.Time) {
	v.mu.Lock()
	if !v.since.IsZero() && !v.gapFrom.IsZero() && !since.After(v.gapFrom) {
		// Reconnected after the service ended the stream, from before it ended: no event can have been
		// missed, and the view holds as it did (a full list of every pod at each rotation would be
		// answered late, and meanwhile every status would list its pod).
		v.gapFrom = time.Time{}
		v.mu.Unlock()
		return
	}
	v.since, v.gapFrom = since, time.Time{}
	if v.broken {
		v.log.Info("the Podman event stream is connected again; resyncing the status view")
		v.broken = false
	}
	v.mu.Unlock()
	// What happened while it was down is found by a full list.
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// disconnected notes the end of the stream; err is nil when the service ended it (logged only if connecting
// again fails).
func (v *view) disconnected(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err == nil {
		// Kept through a quick reconnection (connected); the gap counts against freshness meanwhile.
		if v.gapFrom.IsZero() {
			v.gapFrom = v.now()
		}
		v.log.Debug("the Podman event stream ended; connecting again")
		return
	}
	v.since, v.gapFrom = time.Time{}, time.Time{}
	if !v.broken {
		v.log.Warn("the Podman event stream broke; the status view lists the engine (at most once per status_max_age) until it is back", "err", err, "status_max_age", v.freshness)
		v.broken = true
	}
}

// replayMargin is how far before the connection, and before the last event delivered, a connection of the
// event stream asks its events from.
const replayMargin = 2 * time.Second

// ignoredActions change nothing a status reports.
var ignoredActions = map[string]bool{"exec": true, "exec_died": true, "attach": true, "mount": true, "unmount": true, "checkpoint": true, "export": true, "commit": true}

// event applies one event: the pod it names is stale from now on.
func (v *view) event(e libpod.Event) {
	if e.TimeNano > 0 {
		v.mu.Lock()
		if t := e.Time(); t.After(v.lastEvent) {
			v.lastEvent = t
		}
		v.mu.Unlock()
	}
	if e.Type != "container" || ignoredActions[e.Action] {
		return
	}
	a := e.Actor.Attributes
	if a[pod.LabelInstance] != v.labels[pod.LabelInstance] || a[pod.LabelBackend] != v.labels[pod.LabelBackend] {
		return
	}
	uid := a[pod.LabelPodUID]
	if uid == "" {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Action == "died" {
		for _, ch := range v.exits[e.Actor.ID] {
			close(ch)
		}
		delete(v.exits, e.Actor.ID)
	}
	v.seq++
	if e.Actor.ID != "" {
		v.ctrSeq[e.Actor.ID] = v.seq
	}
	pv := v.pods[uid]
	if pv == nil {
		pv = &podView{}
		v.pods[uid] = pv
	}
	if v.sameClock && e.TimeNano > 0 && !pv.at.IsZero() && e.Time().Before(pv.at) {
		// Podman stamps an event once the change is made, and the pod was listed after: the list shows it.
		// Events reach the stream a while after their change (seconds on a busy service): each one of a
		// pod's start would otherwise make its next status list the pod again.
		return
	}
	pv.note(podEvent{seq: v.seq, id: e.Actor.ID, action: e.Action, timeNano: e.TimeNano})
}

// exitSignal returns a channel closed when a died event of container id arrives, from now on (or a replayed
// one: whoever waits checks the container after), and the function that gives it up.
func (v *view) exitSignal(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	v.mu.Lock()
	v.exits[id] = append(v.exits[id], ch)
	v.mu.Unlock()
	return ch, func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if rest := slices.DeleteFunc(v.exits[id], func(c chan struct{}) bool { return c == ch }); len(rest) > 0 {
			v.exits[id] = rest
		} else {
			delete(v.exits, id)
		}
	}
}

// note makes the pod stale by event e, kept for settle.
func (pv *podView) note(e podEvent) {
	pv.evSeq = e.seq
	if len(pv.recent) < maxRecent {
		pv.recent = append(pv.recent, e)
	} else {
		pv.overflow = true
	}
}

// behind records that an inspect of container id of pod uid found it changed since the pod's entry was
// listed: the entry is stale as if by an event, one that no list asked before now shows (see settle).
func (v *view) behind(uid, id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	pv := v.pods[uid]
	if pv == nil {
		return
	}
	v.seq++
	v.ctrSeq[id] = v.seq
	pv.note(podEvent{seq: v.seq, id: id, action: "inspect"})
}

// settle makes pv, just listed, fresh despite the events applied while its list was on its way, when the
// list shows every one of them: a list is answered a while after it is asked (seconds on a busy service),
// and the events of a pod's start arriving meanwhile would otherwise make its next status list it again,
// every pod of a burst of creates once. An event shows in the list when it was stamped before the list was
// asked (same clock only, see event), or when it is part of a start (create, init, start) of a container
// the list has running since the event's second or later: any later change of it (a died, a restart) is an
// event of its own, which does not show so.
func (v *view) settle(pv *podView) {
	var keep []podEvent
	for _, e := range pv.recent {
		if e.seq > pv.atSeq {
			keep = append(keep, e)
		}
	}
	pv.recent = keep
	if pv.evSeq <= pv.atSeq {
		pv.overflow = false // the list was asked after every event, those not kept too
		return
	}
	if pv.overflow {
		return
	}
	byID := make(map[string]*libpod.ListContainer, len(pv.ctrs))
	for i := range pv.ctrs {
		byID[pv.ctrs[i].ID] = &pv.ctrs[i]
	}
	for _, e := range keep {
		if v.sameClock && e.timeNano > 0 && time.Unix(0, e.timeNano).Before(pv.at) {
			continue
		}
		c := byID[e.id]
		switch {
		case e.timeNano <= 0 || c == nil || c.State != "running":
			return
		case e.action != "create" && e.action != "init" && e.action != "start":
			return
		case c.StartedAt < time.Unix(0, e.timeNano).Unix():
			return
		}
	}
	pv.atSeq, pv.recent = pv.evSeq, nil
}

// freshLocked tells whether the view may answer for pod uid at now without asking the engine.
func (v *view) freshLocked(uid string, now time.Time) bool {
	pv, ok := v.pods[uid]
	if !ok {
		// Absent: as the last full list said, if that list still holds.
		return !v.listed.IsZero() && v.holds(v.listed, now)
	}
	return pv.evSeq <= pv.atSeq && !pv.at.IsZero() && v.holds(pv.at, now)
}

// holds tells whether what was listed at at still holds at now, barring an event.
func (v *view) holds(at, now time.Time) bool {
	return (v.streamingLocked(now) && !at.Before(v.since)) || now.Sub(at) <= v.freshness
}

// streamingLocked tells whether every event since v.since has been applied, give or take freshness: the
// stream is connected, or the service ended it less than freshness ago and it is being reconnected.
func (v *view) streamingLocked(now time.Time) bool {
	return !v.since.IsZero() && (v.gapFrom.IsZero() || now.Sub(v.gapFrom) <= v.freshness)
}

// pods returns the containers of each pod of uids (infra containers included), listing the engine first for
// those whose entry is stale: per pod for a few of them while the stream runs, else all at once.
func (v *view) containers(ctx context.Context, uids []string) (map[string]podView, error) {
	now := v.now()
	v.mu.Lock()
	var stale []string
	// full: a list of every pod is what refreshes the stale ones: one of them is stale by age alone (its
	// list is older than the stream's connection: only the resync that follows a connection or a full list
	// while the stream is down refreshes it, and a list per pod of every pod asked meanwhile would flood the
	// engine), or a full list asked since their last events is in flight already.
	full := false
	inFlight := v.full != nil
	for _, uid := range uids {
		if v.freshLocked(uid, now) {
			continue
		}
		stale = append(stale, uid)
		pv, ok := v.pods[uid]
		if !ok || pv.evSeq <= pv.atSeq && !pv.at.IsZero() {
			full = true
		} else if inFlight && v.full.seq < pv.evSeq {
			inFlight = false
		}
	}
	full = full || inFlight && len(stale) > 0
	streaming := v.streamingLocked(now)
	v.mu.Unlock()
	var names []string
	if !full && streaming && len(stale) > perPodLists && len(stale) <= maxPodsPerList && v.podName != nil {
		for _, uid := range stale {
			name := v.podName(uid)
			if name == "" {
				names = nil
				break
			}
			names = append(names, name)
		}
	}
	switch {
	case len(stale) == 0:
	case names != nil:
		// More stale pods than lists per pod, fewer than a list of every pod is worth: one list of their
		// Podman pods, whose cost on the service grows with what it lists, not with every container it has
		// (a list of every pod at N = 400 takes a second and held up the creates of a burst).
		if err := v.listPods(ctx, stale, names); err != nil {
			return nil, err
		}
	case full || !streaming || len(stale) > perPodLists:
		if err := v.listAll(ctx); err != nil {
			return nil, err
		}
	default:
		errs := make(chan error, len(stale))
		for _, uid := range stale {
			go func() { errs <- v.listPod(ctx, uid) }()
		}
		var first error
		for range stale {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		if first != nil {
			return nil, first
		}
	}
	return v.snapshot(uids), nil
}

// snapshot copies the entries of uids (an absent pod has none).
func (v *view) snapshot(uids []string) map[string]podView {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]podView, len(uids))
	for _, uid := range uids {
		if pv, ok := v.pods[uid]; ok {
			out[uid] = *pv
		}
	}
	return out
}

// all returns every pod the view has containers of, listing the engine first unless the whole view holds.
func (v *view) all(ctx context.Context) (map[string]podView, error) {
	now := v.now()
	v.mu.Lock()
	ok := !v.listed.IsZero() && v.holds(v.listed, now)
	for _, pv := range v.pods {
		ok = ok && pv.evSeq <= pv.atSeq && !pv.at.IsZero() && v.holds(pv.at, now)
	}
	v.mu.Unlock()
	if !ok {
		if err := v.listAll(ctx); err != nil {
			return nil, err
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[string]podView, len(v.pods))
	for uid, pv := range v.pods {
		if len(pv.ctrs) > 0 {
			out[uid] = *pv
		}
	}
	return out, nil
}

// listAll lists every container of the backend, one list shared by every caller asking meanwhile.
func (v *view) listAll(ctx context.Context) error {
	v.mu.Lock()
	f := v.full
	if f == nil {
		at, seq := v.now(), v.seq
		f = &flight{done: make(chan struct{}), seq: seq}
		v.full = f
		go func() {
			lctx, cancel := context.WithTimeout(v.ctx, listTimeout)
			defer cancel()
			list, err := v.eng.ContainerList(lctx, v.labels)
			v.mu.Lock()
			if err == nil {
				v.applyAll(list, at, seq)
			}
			f.err = err
			v.full = nil
			v.mu.Unlock()
			if err == nil && v.onList != nil {
				seen := make(map[string]bool, len(list))
				for _, c := range list {
					seen[c.ID] = true
				}
				v.onList(seen)
			}
			close(f.done)
		}()
	}
	v.mu.Unlock()
	return wait(ctx, f)
}

// maxPodsPerList bounds the stale pods refreshed by one list of their Podman pods; more take a full list.
const maxPodsPerList = 64

// listPods lists the containers of the pods uids, whose Podman pods are names, in one list (every container
// of a pod is in its Podman pod, made first), and applies what it found of each as a list of it (not alone:
// an empty answer for a launched pod is checked by a list of that pod, as after a full list).
func (v *view) listPods(ctx context.Context, uids, names []string) error {
	v.mu.Lock()
	at, seq := v.now(), v.seq
	v.mu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	list, err := v.eng.ContainerListInPods(lctx, v.labels, names)
	if err != nil {
		return err
	}
	byPod := map[string][]libpod.ListContainer{}
	for _, c := range list {
		uid := c.Labels[pod.LabelPodUID]
		byPod[uid] = append(byPod[uid], c)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, uid := range uids {
		v.applyPod(uid, byPod[uid], at, seq, false)
	}
	return nil
}

// listPod lists the containers of pod uid alone, one list shared by every caller asking meanwhile.
func (v *view) listPod(ctx context.Context, uid string) error {
	v.mu.Lock()
	f := v.one[uid]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		v.one[uid] = f
		at, seq := v.now(), v.seq
		go func() {
			lctx, cancel := context.WithTimeout(v.ctx, listTimeout)
			defer cancel()
			labels := map[string]string{pod.LabelPodUID: uid}
			for k, val := range v.labels {
				labels[k] = val
			}
			list, err := v.eng.ContainerList(lctx, labels)
			v.mu.Lock()
			if err == nil {
				v.applyPod(uid, list, at, seq, true)
			}
			f.err = err
			delete(v.one, uid)
			v.mu.Unlock()
			close(f.done)
		}()
	}
	v.mu.Unlock()
	return wait(ctx, f)
}

func wait(ctx context.Context, f *flight) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// applyPod replaces the entry of pod uid by what a list of it, asked at at (seq), found; alone when it
// listed that pod only.
func (v *view) applyPod(uid string, list []libpod.ListContainer, at time.Time, seq uint64, alone bool) {
	old := v.pods[uid]
	pv := &podView{ctrs: list, at: at, atSeq: seq, alone: alone}
	if old != nil {
		pv.evSeq, pv.recent, pv.overflow = old.evSeq, old.recent, old.overflow
		if old.newerThan(at, seq) {
			return // a later list (or the pod's delete) already answered
		}
	}
	v.settle(pv)
	v.pods[uid] = pv
}

// newerThan tells whether the entry was made (listed, or forgotten by the pod's delete) after a list asked
// at at (seq): by the event sequence, or, when no event came between, by the clock.
func (pv *podView) newerThan(at time.Time, seq uint64) bool {
	return !pv.at.IsZero() && (pv.atSeq > seq || pv.at.After(at))
}

// applyAll replaces the view by what a list of every container, asked at at (seq), found. A pod with an
// event since stays stale; an entry that a later per-pod list made is kept. A pod whose containers changed
// while the stream ran without an event about it means the stream missed events: logged once, and the
// stream is reconnected.
func (v *view) applyAll(list []libpod.ListContainer, at time.Time, seq uint64) {
	byPod := map[string][]libpod.ListContainer{}
	seen := map[string]bool{}
	for _, c := range list {
		uid := c.Labels[pod.LabelPodUID]
		if uid == "" {
			continue
		}
		byPod[uid] = append(byPod[uid], c)
		seen[c.ID] = true
	}
	var (
		missed *libpod.ListContainer // the first container found changed without an event
		change string                // how
	)
	pods := make(map[string]*podView, len(byPod))
	for uid, ctrs := range byPod {
		pv := &podView{ctrs: ctrs, at: at, atSeq: seq}
		if old := v.pods[uid]; old != nil {
			if old.newerThan(at, seq) {
				// Listed, or forgotten by its delete, after this list was asked: what the list found of the
				// pod is older than what the view holds (a deleted pod would come back).
				pods[uid] = old
				continue
			}
			pv.evSeq, pv.recent, pv.overflow = old.evSeq, old.recent, old.overflow
			// Only an entry the view took for fresh can show a missed event: one stale already had an event
			// announce its change.
			if missed == nil && old.evSeq <= old.atSeq && !old.at.IsZero() && !v.since.IsZero() && !old.at.Before(v.since) {
				missed, change = changedUnannounced(old.ctrs, ctrs, at)
			}
			v.settle(pv)
		}
		pods[uid] = pv
	}
	for uid, old := range v.pods {
		if _, ok := pods[uid]; ok {
			continue
		}
		if old.newerThan(at, seq) || old.evSeq > seq {
			pods[uid] = old // listed after this list was asked, or named by an event since
		}
	}
	v.pods, v.listed, v.lseq = pods, at, seq
	for id, s := range v.ctrSeq {
		if !seen[id] && s <= seq {
			delete(v.ctrSeq, id)
		}
	}
	if missed != nil {
		if !v.missedLogged {
			withPodLabels(v.log, missed.Labels).Warn("the Podman event stream missed a change the resync found; reconnecting it",
				"container", missed.Labels[pod.LabelContainer], "change", change)
			v.missedLogged = true
		}
		v.since, v.gapFrom = time.Time{}, time.Time{}
		if v.reconnect != nil {
			v.reconnect()
		}
	}
}

// missSlack is how long after a change its event may still be on its way.
const missSlack = 5 * time.Second

// changedUnannounced finds a container of a pod, listed at at, that differs from an earlier list by a change
// older than missSlack (whose event should have arrived by then), and says how it changed; nil if none.
func changedUnannounced(old, cur []libpod.ListContainer, at time.Time) (*libpod.ListContainer, string) {
	before := map[string]libpod.ListContainer{}
	for _, c := range old {
		before[c.ID] = c
	}
	limit := at.Add(-missSlack).Unix()
	for i, c := range cur {
		o, ok := before[c.ID]
		if ok && listKey(&o) == listKey(&c) {
			continue
		}
		last := max(c.Created.Unix(), c.StartedAt, c.ExitedAt)
		if last > 0 && last < limit {
			if !ok {
				return &cur[i], fmt.Sprintf("appeared %s", c.State)
			}
			return &cur[i], fmt.Sprintf("%s became %s", listKey(&o), listKey(&c))
		}
	}
	return nil, ""
}

// fresh returns the containers of pod uid as the view holds them, if it may answer for the pod without
// asking the engine (see freshLocked); ok is false otherwise, or when the view has no entry of the pod.
func (v *view) fresh(uid string) (ctrs []libpod.ListContainer, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	pv, have := v.pods[uid]
	if !have || !v.freshLocked(uid, v.now()) {
		return nil, false
	}
	return slices.Clone(pv.ctrs), true
}

// forget records that pod uid has nothing on the engine as of now: its delete removed everything.
func (v *view) forget(uid string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.pods[uid]
	pv := &podView{at: v.now(), atSeq: v.seq, alone: true}
	if old != nil {
		pv.evSeq = min(old.evSeq, v.seq)
	}
	v.pods[uid] = pv
}

// unchanged tells whether container id has had no event since the view's seq was seq, the stream having
// been connected since before t (so none can have been missed).
func (v *view) unchanged(id string, seq uint64, t time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.streamingLocked(v.now()) && !t.Before(v.since) && v.ctrSeq[id] <= seq
}

// mark returns the view's seq and the time, to stamp what is asked of the engine now (see unchanged).
func (v *view) mark() (uint64, time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seq, v.now()
}
