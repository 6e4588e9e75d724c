package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// stormSize is how many creates each storm sends at once.
const stormSize = 40

// A backend SIGKILLed in the middle of a storm of concurrent creates loses nothing and leaves nothing: once
// it is back and reconciled, every create answered 200 has exactly one object set on the engine and one
// journal entry, every create answered otherwise has neither, the engine holds nothing else of the
// instance, and /status agrees. The dispatcher is then stopped and started again on the same data
// directory, and the pods are deleted as soon as it is ready, while its reconciliation with the backend
// runs (as interLink's deletes would come): every delete is answered 200, nothing is left on the engine,
// and no deleted pod comes back into the journal.
func TestBackendKilledDuringCreateStorm(t *testing.T) {
	t.Parallel()
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			d := start(t, "storm-"+k.name, k)
			// The first reconciliation ends before the storm: /readyz does not wait for it, and under load its
			// List may otherwise still run when the backend is killed, and end as an error.
			d.waitMetric(90*time.Second, 1, "interlink_dispatcher_reconciliations_total", "backend="+k.name, "outcome=ok")
			victim := d.backendPID(k.name)
			pods := make([]*v1.Pod, stormSize)
			for i := range pods {
				pods[i] = d.pod(k, fmt.Sprintf("s%02d", i))
			}

			codes := make([]int, len(pods))
			bodies := make([]string, len(pods))
			done := make([]atomic.Bool, len(pods))
			index := map[string]int{}
			for i, p := range pods {
				index[string(p.UID)] = i
			}
			var answered atomic.Int32
			quarter := make(chan struct{})
			var wg sync.WaitGroup
			for i, p := range pods {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, body, err := d.create(p)
					if err != nil {
						body = err.Error()
					}
					codes[i], bodies[i] = code, body
					done[i].Store(true)
					if answered.Add(1) == stormSize/4 {
						close(quarter)
					}
				}()
			}
			// The kill comes once a quarter of the storm is answered and the backend is seen in the middle of
			// a create: a pod directory (each backend makes it first) of a create not answered yet. A create
			// still queued in the dispatcher or the network when the backend dies tests nothing.
			<-quarter
			podsDir := filepath.Join(d.dataDir, "backends", k.name, "pods")
			var caught []string
			for deadline := time.Now().Add(time.Minute); len(caught) == 0 && answered.Load() < stormSize && time.Now().Before(deadline); {
				entries, _ := os.ReadDir(podsDir)
				for _, e := range entries {
					if i, ok := index[e.Name()]; ok && !done[i].Load() {
						caught = append(caught, e.Name())
					}
				}
				if len(caught) == 0 {
					time.Sleep(2 * time.Millisecond)
				}
			}
			inFlight := stormSize - int(answered.Load())
			if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if len(caught) == 0 {
				t.Fatal("the backend was never seen in the middle of a create before the storm ended: the kill tested nothing")
			}

			var ok, refused []*v1.Pod
			byCode := map[int]int{}
			for i, p := range pods {
				byCode[codes[i]]++
				if codes[i] >= 200 && codes[i] < 300 {
					ok = append(ok, p)
				} else {
					refused = append(refused, p)
				}
			}
			t.Logf("%s: %d creates, the backend killed with %d unanswered, %d of them with a pod directory; answers by code: %v; first refusal: %s",
				k.name, stormSize, inFlight, len(caught), byCode, firstRefusal(codes, bodies))
			if len(ok) == 0 {
				t.Fatal("no create was accepted: the storm did not reach the backend")
			}

			// Back up, and reconciled once more after the restart.
			d.waitMetric(90*time.Second, 1, "interlink_dispatcher_backend_restarts_total", "backend="+k.name)
			d.waitMetric(90*time.Second, 1, "interlink_dispatcher_backend_up", "backend="+k.name)
			d.waitMetric(90*time.Second, 2, "interlink_dispatcher_reconciliations_total", "backend="+k.name, "outcome=ok")
			d.settle(k, ok, 2*time.Minute)

			st, err := d.statuses(pods)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range st {
				accepted := codes[i] >= 200 && codes[i] < 300
				if refusedOrNotFound(s) == accepted {
					t.Errorf("pod %s answered %d on create, and /status says %s", pods[i].UID, codes[i], stateString(s.Containers[0].State))
				}
			}

			// The journal, read with the dispatcher stopped: exactly the accepted pods.
			if !d.stop() {
				t.Fatal("the dispatcher did not stop cleanly on SIGTERM")
			}
			journal := d.journal()
			for _, p := range ok {
				if e, found := journal[string(p.UID)]; !found || e.Backend != k.name {
					t.Errorf("pod %s was accepted but is not journaled on %s (found %v, backend %q)", p.UID, k.name, found, e.Backend)
				}
			}
			for _, p := range refused {
				if e, found := journal[string(p.UID)]; found {
					t.Errorf("pod %s was refused but is journaled (backend %s, remote id %q, adopted %v)", p.UID, e.Backend, e.RemoteID, e.Adopted)
				}
			}
			if len(journal) != len(ok) {
				t.Errorf("the journal holds %d entries for %d accepted pods", len(journal), len(ok))
			}

			// Started again on the same data directory, it deletes every pod of the storm, leaving nothing.
			d.run()
			d.mustDeleteAll(pods)
			d.settle(k, nil, 2*time.Minute)
			d.waitMetric(90*time.Second, 1, "interlink_dispatcher_reconciliations_total", "backend="+k.name, "outcome=ok")
			if v, _ := d.metric("interlink_dispatcher_journal_pods"); v != 0 {
				t.Errorf("the journal holds %v entries once every pod was deleted and the reconciliation after the restart is done", v)
			}
		})
	}
}

// firstRefusal returns the body of one non-2xx answer per code, for the log.
func firstRefusal(codes []int, bodies []string) string {
	seen := map[int]string{}
	for i, c := range codes {
		if (c < 200 || c >= 300) && seen[c] == "" {
			seen[c] = fmt.Sprintf("%d %s", c, strings.TrimSpace(bodies[i]))
		}
	}
	var out []string
	for _, s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return strings.Join(out, " | ")
}
