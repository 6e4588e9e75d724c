package faults

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

const (
	duplicateCreates = 8  // concurrent creates of one UID
	concurrentDelete = 32 // concurrent deletes, of one pod and over many
	manyPods         = 16 // the pods the second round of deletes is spread over, two each
)

// Concurrent duplicates and deletes on each backend: 8 concurrent creates of one UID make one pod and are
// all answered 200 with the same job id (one create, seven answered from the journal); 32 concurrent
// deletes of one pod, and 32 spread over 16 pods, are all answered 200 and leave nothing of those pods,
// while the duplicated pod is still there exactly once.
func TestConcurrentDuplicatesAndDeletes(t *testing.T) {
	t.Parallel()
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			d := start(t, "conc-"+k.name, k)

			dup := d.pod(k, "dup")
			answers := make([]string, duplicateCreates)
			var wg sync.WaitGroup
			for i := range answers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, body, err := d.create(dup)
					var cs interlink.CreateStruct
					if err == nil && code == 200 && json.Unmarshal([]byte(body), &cs) == nil && cs.PodUID == string(dup.UID) {
						answers[i] = "job " + cs.PodJID
					} else {
						answers[i] = fmt.Sprintf("%d %s %v", code, strings.TrimSpace(body), err)
					}
				}()
			}
			wg.Wait()
			for _, a := range answers {
				if a != answers[0] || !strings.HasPrefix(a, "job ") {
					t.Fatalf("%d concurrent creates of one pod answered differently: %q", duplicateCreates, answers)
				}
			}
			if v, _ := d.metric("interlink_dispatcher_pod_creates_total", "backend="+k.name, "outcome=duplicate"); v != duplicateCreates-1 {
				t.Errorf("%v creates counted as duplicates, want %d", v, duplicateCreates-1)
			}

			one := d.pod(k, "one")
			var many []*v1.Pod
			for i := range manyPods {
				many = append(many, d.pod(k, fmt.Sprintf("m%02d", i)))
			}
			d.mustCreateAll(append([]*v1.Pod{one}, many...))
			d.settle(k, append([]*v1.Pod{dup, one}, many...), 90*time.Second)
			if v, _ := d.metric("interlink_dispatcher_journal_pods"); v != float64(manyPods+2) {
				t.Errorf("the journal holds %v entries for %d pods", v, manyPods+2)
			}

			// All deletes at once: 32 of one pod, then 32 over the 16.
			same := make([]*v1.Pod, concurrentDelete)
			for i := range same {
				same[i] = one
			}
			spread := make([]*v1.Pod, concurrentDelete)
			for i := range spread {
				spread[i] = many[i%manyPods]
			}
			for _, round := range [][]*v1.Pod{same, spread} {
				if fails := parallel(round, concurrentDelete, d.delete); len(fails) > 0 {
					t.Errorf("%d of %d concurrent deletes failed: %s", len(fails), len(round), firstN(fails, 5))
				}
			}
			d.settle(k, []*v1.Pod{dup}, 90*time.Second)
			if v, _ := d.metric("interlink_dispatcher_journal_pods"); v != 1 {
				t.Errorf("the journal holds %v entries with only the duplicated pod left", v)
			}

			d.mustDeleteAll([]*v1.Pod{dup})
			d.settle(k, nil, 90*time.Second)
			if v, _ := d.metric("interlink_dispatcher_journal_pods"); v != 0 {
				t.Errorf("the journal holds %v entries after every pod was deleted", v)
			}
		})
	}
}
