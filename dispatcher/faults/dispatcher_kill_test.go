package faults

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// podsPerKind is how many running pods each backend has when the dispatcher is killed: SLURM's are few, as
// each job holds a whole CPU of the lab's node, which the other tests share.
var podsPerKind = map[string]int{"docker": 8, "podman": 8, "slurm": 3}

// The dispatcher SIGKILLed with pods running on all three backends and started again on the same data
// directory: its old backend processes are gone, every pod is still answered by /status as running, and
// each engine holds exactly one object set per pod, the very one it had before (none lost, none made
// again, none duplicated). Deleting them all then leaves nothing.
func TestDispatcherKilledWithRunningPods(t *testing.T) {
	t.Parallel()
	d := start(t, "dkill", allKinds...)
	var pods []*v1.Pod
	byKind := map[string][]*v1.Pod{}
	for _, k := range allKinds {
		for i := range podsPerKind[k.name] {
			p := d.pod(k, fmt.Sprintf("%s%d", k.name[:1], i))
			pods = append(pods, p)
			byKind[k.name] = append(byKind[k.name], p)
		}
	}
	d.mustCreateAll(pods)
	d.waitRunning(pods, 3*time.Minute)
	units := map[string]map[string]string{}
	for _, k := range allKinds {
		units[k.name] = d.unitIDs(k)
	}
	old := d.backendPIDs()
	if len(old) != len(allKinds) {
		t.Fatalf("before the kill the instance has backend processes %v, want one of each of %d backends", old, len(allKinds))
	}

	d.kill()
	d.run()
	// The old backends must not outlive their dispatcher: one still running supervises, restarts and
	// re-creates pods behind the new one's back.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var alive []string
		for pid, name := range d.backendPIDs() {
			if _, ok := old[pid]; ok {
				alive = append(alive, fmt.Sprintf("%s (pid %d)", name, pid))
			}
		}
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			sort.Strings(alive)
			t.Errorf("15 s after the dispatcher was killed and started again, its old backends still run: %s", strings.Join(alive, ", "))
			break
		}
		time.Sleep(250 * time.Millisecond)
	}

	st, err := d.statuses(pods)
	if err != nil {
		t.Fatal(err)
	}
	if bad := notRunning(pods, st); len(bad) > 0 {
		t.Errorf("after the restart, %d pods are not answered as running: %s", len(bad), firstN(bad, 10))
	}
	for _, k := range allKinds {
		if d.settle(k, byKind[k.name], time.Minute) {
			d.sameUnits(k, byKind[k.name], units[k.name], "after the dispatcher's restart")
		}
	}

	d.mustDeleteAll(pods)
	for _, k := range allKinds {
		d.settle(k, nil, 90*time.Second)
	}
	if v, _ := d.metric("interlink_dispatcher_journal_pods"); v != 0 {
		t.Errorf("the journal holds %v entries after every pod was deleted", v)
	}
}
