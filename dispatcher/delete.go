package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// DeleteResult is what a delete did, as the sentence interLink logs, and where the pod was located ("" when
// nowhere).
type DeleteResult struct {
	Backend string
	Message string
}

// Delete stops the pod gracefully on its backend (its grace period held within limits.max_grace_period,
// plus timeouts.delete), then forgets it. Deleting a pod no backend knows succeeds; a journaled pod whose
// backend this dispatcher no longer runs is forgotten. Delete may change the pod's grace periods.
func (c *Core) Delete(ctx context.Context, p *v1.Pod) (res DeleteResult, err error) {
	chosen := "none" // a configured backend once located, like PodCreated's
	defer func() { c.obs.PodDeleted(chosen, outcomeOfErr(err)) }()
	uid := string(p.UID)
	if uid == "" {
		return res, badRequest("the pod has no metadata.uid; send the pod with its UID")
	}
	// No pod with a malformed UID, name or namespace was ever created here: refuse it before an engine sees it.
	if verr := pod.ValidIdentity(uid, p.Namespace, p.Name, false); verr != nil {
		return res, &RequestError{verr.Error()}
	}
	unlock := c.locks.Lock(uid)
	defer unlock()
	c.refused.forget(uid)
	c.asked.forget(uid)

	notKnown := DeleteResult{Message: fmt.Sprintf("pod %s/%s (%s) is not known to this dispatcher; nothing to delete", p.Namespace, p.Name, uid)}
	name, e, journaled, err := c.locate(p)
	if err != nil {
		var re *RouteError
		if errors.As(err, &re) {
			// A pod routed to a backend this dispatcher does not have was never created here.
			return notKnown, nil
		}
		return res, err
	}
	res.Backend, notKnown.Backend = name, name
	if slices.Contains(c.backends.Names(), name) {
		chosen = name // an enabled backend: a bounded label
	}
	if why := c.router.NotRunning(name); journaled && why != "" {
		return c.forgetOnStopped(p, name, why)
	}
	b, _, err := c.backends.Backend(name)
	if err != nil {
		if !journaled && backend.KindOf(err) == backend.KindUnavailable {
			// Never created through this dispatcher, and reconciliation re-adopts it if its backend has it.
			return notKnown, nil
		}
		return res, err
	}
	c.clampGrace(p)
	grace := pod.GracePeriod(p)
	dctx, cancel := context.WithTimeout(ctx, grace+c.cfg.Timeouts.Delete)
	defer cancel()
	err = b.Delete(dctx, backend.DeleteRequest{Pod: p, RemoteID: e.RemoteID, GracePeriod: grace})
	if err != nil && backend.KindOf(err) != backend.KindNotFound { // a pod the backend does not have is deleted
		return res, err
	}
	if journaled {
		if err := c.journalDelete(uid); err != nil {
			// The pod is gone; its stale entry only costs a NotFound status later.
			c.log.Warn("pod deleted but its journal entry could not be removed", "pod_uid", uid,
				"namespace", p.Namespace, "name", p.Name, "err", err)
		}
	}
	c.log.Info("pod deleted", "pod_uid", uid, "namespace", p.Namespace, "name", p.Name, "backend", name, "grace", grace)
	res.Message = fmt.Sprintf("pod %s/%s (%s) deleted from backend %s", p.Namespace, p.Name, uid, name)
	return res, nil
}

// DeleteBudget is how long Delete of p may take: its grace period as Delete holds it within
// limits.max_grace_period, plus timeouts.delete.
func (c *Core) DeleteBudget(p *v1.Pod) time.Duration {
	q := p.DeepCopy()
	pod.ClampGracePeriods(q, c.cfg.Limits.MaxGracePeriod)
	return pod.GracePeriod(q) + c.cfg.Timeouts.Delete
}

// forgetOnStopped deletes a journaled pod whose backend the dispatcher no longer runs (why says so): nothing
// can reach that backend, so the pod is forgotten, and the log says, once, what may be left on it.
func (c *Core) forgetOnStopped(p *v1.Pod, name, why string) (DeleteResult, error) {
	uid := string(p.UID)
	if err := c.journalDelete(uid); err != nil {
		c.log.Error("cannot forget a pod whose backend is not running: its journal entry could not be removed",
			"pod_uid", uid, "namespace", p.Namespace, "name", p.Name, "backend", name, "err", err)
		return DeleteResult{Backend: name}, fmt.Errorf(
			"the pod could not be forgotten: the dispatcher could not remove it from its journal (%v); check the disk under data_dir", err)
	}
	c.log.Warn("pod forgotten without deleting it: "+why+"; whatever it left there is not cleaned up",
		"pod_uid", uid, "namespace", p.Namespace, "name", p.Name, "backend", name)
	return DeleteResult{Backend: name, Message: fmt.Sprintf("pod %s/%s (%s) forgotten: %s", p.Namespace, p.Name, uid, why)}, nil
}

// clampGrace holds the pod's grace periods within limits.max_grace_period (a negative one is 1 s, as in
// Kubernetes) before any backend sees the pod, and logs what it changed.
func (c *Core) clampGrace(p *v1.Pod) {
	if changed := pod.ClampGracePeriods(p, c.cfg.Limits.MaxGracePeriod); len(changed) > 0 {
		c.log.Warn("grace periods held within limits.max_grace_period", "pod_uid", string(p.UID), "namespace", p.Namespace,
			"name", p.Name, "fields", strings.Join(changed, ","), "max", c.cfg.Limits.MaxGracePeriod)
	}
}
