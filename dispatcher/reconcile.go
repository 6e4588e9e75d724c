package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// Reconcile brings the journal in line with what backend name runs, as its List says: pods the journal
// lacks are adopted, entries of pods the backend no longer has are marked missing (and unmarked if they come
// back). The engines are the source of truth; nothing is deleted on either side. It runs each time a backend
// comes up; cancelled (the process gone, the dispatcher stopping), it stops before its next journal write.
func (c *Core) Reconcile(ctx context.Context, name string, b backend.Backend) {
	adopted, missing, err := c.reconcile(ctx, name, b)
	c.obs.Reconciled(name, adopted, missing, err)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("reconciliation failed; routing of pods missing from the journal falls back to the rules", "backend", name, "err", err)
		}
		return
	}
	c.log.Info("reconciled journal with backend", "backend", name, "adopted", adopted, "missing", missing)
}

func (c *Core) reconcile(ctx context.Context, name string, b backend.Backend) (adopted, missing int, err error) {
	// Entries journaled after List started may be absent from its answer without being gone.
	listed := time.Now().UTC()
	// The journal is read before List: a pod deleted while List runs is then still among the entries and is
	// not taken for one the journal lacks (a delete removes the pod from the backend before its entry, so a
	// pod whose entry was already gone is not listed). Read after List, such a pod was adopted back.
	entries, err := c.journal.All()
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read the journal: %w", err)
	}
	lctx, cancel := context.WithTimeout(ctx, c.cfg.Timeouts.List)
	defer cancel()
	recs, err := b.List(lctx)
	if err != nil {
		return 0, 0, fmt.Errorf("List failed: %w", err)
	}
	if err := ctx.Err(); err != nil {
		// The process went away or the dispatcher is stopping (the journal may be closed by now).
		return 0, 0, fmt.Errorf("stopped before its journal writes: %w", err)
	}
	byUID := make(map[string]Entry, len(entries))
	for _, e := range entries {
		byUID[e.UID] = e
	}
	has := make(map[string]bool, len(recs))
	var writes []reconcileWrite
	for _, rec := range recs {
		has[rec.UID] = true
		e, ok := byUID[rec.UID]
		switch {
		case !ok && c.isAbandonedOn(name, rec.UID):
			// Not adopted: applyReconcile deletes it (see createAgain).
			writes = append(writes, reconcileWrite{adopt: true, Entry: Entry{UID: rec.UID, Backend: name,
				Namespace: rec.Namespace, Name: rec.Name}})
		case !ok:
			created := rec.Created
			if created.IsZero() {
				created = listed
			}
			writes = append(writes, reconcileWrite{adopt: true, Entry: Entry{UID: rec.UID, Backend: name, RemoteID: rec.RemoteID,
				Namespace: rec.Namespace, Name: rec.Name, Created: created.UTC(), Adopted: true}})
			adopted++
			c.log.Info("adopted pod found on backend", "backend", name, "pod_uid", rec.UID, "namespace", rec.Namespace, "name", rec.Name, "remote_id", rec.RemoteID)
		case e.Backend != name:
			c.log.Warn("pod is journaled on another backend than the one that runs it; keeping the journal's",
				"pod_uid", rec.UID, "namespace", rec.Namespace, "name", rec.Name, "journal_backend", e.Backend, "backend", name)
		case !e.MissingSince.IsZero() || (e.RemoteID == "" && rec.RemoteID != ""):
			e.MissingSince = time.Time{}
			if e.RemoteID == "" {
				e.RemoteID = rec.RemoteID
			}
			writes = append(writes, reconcileWrite{Entry: e})
		}
	}
	for _, e := range entries {
		if e.Backend != name || has[e.UID] || !e.MissingSince.IsZero() || e.Created.After(listed) {
			continue
		}
		e.MissingSince = listed
		writes = append(writes, reconcileWrite{Entry: e})
		missing++
		c.log.Warn("journaled pod is gone from its backend; its status will say NotFound", "backend", name, "pod_uid", e.UID,
			"namespace", e.Namespace, "name", e.Name)
	}
	if len(writes) > 0 {
		// Entries may have changed since All (a create, a delete): write only over what is still there or absent.
		start := time.Now()
		err = c.applyReconcile(ctx, b, writes)
		c.obs.JournalWrite(time.Since(start), err)
		if err != nil {
			return adopted, missing, fmt.Errorf("cannot update the journal: %w", err)
		}
	}
	return adopted, missing, nil
}

// applyReconcile writes reconciliation results without undoing a delete or create that happened meanwhile:
// an adoption does not overwrite an entry that appeared, and a mark does not resurrect a deleted entry. A
// pod to adopt whose create was refused while its backend was down is deleted from b instead.
func (c *Core) applyReconcile(ctx context.Context, b backend.Backend, writes []reconcileWrite) error {
	for _, w := range writes {
		if err := ctx.Err(); err != nil {
			// Cancelled with its process or the dispatcher: the next start reconciles again.
			return fmt.Errorf("stopped: %w", err)
		}
		unlock := c.locks.Lock(w.UID)
		_, found, err := c.journal.Get(w.UID)
		switch {
		case err != nil:
		case ctx.Err() != nil:
			err = fmt.Errorf("stopped: %w", ctx.Err()) // while it waited for the pod's lock
		case w.adopt && !found && c.isAbandonedOn(w.Backend, w.UID):
			// A pod whose create was answered with an error while its backend was down (perhaps while
			// this reconciliation waited for the pod's lock): deleted, never adopted.
			c.undoAbandoned(ctx, b, w.Entry)
		case w.adopt && !found:
			err = c.journal.Put(w.Entry)
		case !w.adopt && found:
			err = c.journal.Update(w.UID, func(e *Entry) bool {
				e.MissingSince, e.RemoteID = w.MissingSince, w.RemoteID
				return true
			})
		}
		unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// reconcileWrite is an adoption (a new entry) or a change of an existing entry's MissingSince and RemoteID.
type reconcileWrite struct {
	Entry
	adopt bool
}

func (c *Core) isAbandonedOn(name, uid string) bool {
	_, ok := c.abandonedOn(name, uid)
	return ok
}

// undoAbandoned deletes from its backend a pod whose create was answered with an error while the backend
// was down (see createAgain); the caller holds the pod's lock and found no journal entry for it.
func (c *Core) undoAbandoned(ctx context.Context, b backend.Backend, e Entry) {
	p, ok := c.abandonedOn(e.Backend, e.UID)
	if !ok {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeouts.Delete)
	defer cancel()
	if err := b.Delete(dctx, backend.DeleteRequest{Pod: p, GracePeriod: 0}); err != nil {
		c.log.Error("could not delete a pod whose create was refused while its backend was down; retrying at the next reconciliation",
			"backend", e.Backend, "pod_uid", e.UID, "namespace", e.Namespace, "name", e.Name, "err", err)
		return
	}
	c.forgetAbandoned(e.UID)
	c.log.Warn("deleted a pod whose create was refused while its backend was down", "backend", e.Backend,
		"pod_uid", e.UID, "namespace", e.Namespace, "name", e.Name)
}
