package faults

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The suite's verdicts hold: an inventory is accepted only when it is exactly one object set per wanted pod
// and nothing else, and each way of being wrong is named. (No engine: the inventories are written here.)
func TestInventoryProblems(t *testing.T) {
	want := []*v1.Pod{{ObjectMeta: metav1.ObjectMeta{UID: types.UID("a")},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "main"}, {Name: "side"}}}}}
	set := func(units int, live map[string]int, dir bool) *podObjects {
		return &podObjects{units: units, live: live, all: []string{"container x (running)"}, dir: dir}
	}
	good := map[string]int{"main": 1, "side": 1}
	for _, tc := range []struct {
		name  string
		kind  kind
		inv   inventory
		wants []string // substrings of the problems, one each; none: accepted
	}{
		{"one set", dockerKind, inventory{pods: map[string]*podObjects{"a": set(1, good, true)}}, nil},
		{"slurm job", slurmKind, inventory{pods: map[string]*podObjects{"a": set(1, map[string]int{}, true)}}, nil},
		{"lost", podmanKind, inventory{pods: map[string]*podObjects{}}, []string{"pod a: lost"}},
		{"lost container", dockerKind, inventory{pods: map[string]*podObjects{"a": set(1, map[string]int{"main": 1}, true)}},
			[]string{`0 live containers "side"`}},
		{"duplicated", podmanKind, inventory{pods: map[string]*podObjects{"a": set(2, map[string]int{"main": 2, "side": 1}, true)}},
			[]string{"2 object sets", `2 live containers "main"`}},
		{"no directory", slurmKind, inventory{pods: map[string]*podObjects{"a": set(1, nil, false)}}, []string{"no pod directory"}},
		{"orphaned pod", dockerKind, inventory{pods: map[string]*podObjects{"a": set(1, good, true), "b": set(1, good, false)}},
			[]string{"pod b: orphaned"}},
		{"orphaned directory", dockerKind, inventory{pods: map[string]*podObjects{"a": set(1, good, true), "c": {dir: true}}},
			[]string{"pod c: orphaned, should have nothing but has its pod directory"}},
		{"stray", dockerKind, inventory{pods: map[string]*podObjects{"a": set(1, good, true)}, stray: []string{"docker volume v"}},
			[]string{"orphaned: docker volume v"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.inv.problems(tc.kind, want)
			if len(got) != len(tc.wants) {
				t.Fatalf("problems %q, want %d like %q", got, len(tc.wants), tc.wants)
			}
			for i, w := range tc.wants {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d is %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
	// Nothing wanted: an empty inventory is accepted, and anything left is an orphan.
	if got := (&inventory{pods: map[string]*podObjects{}}).problems(dockerKind, nil); len(got) != 0 {
		t.Errorf("an empty inventory with nothing wanted: %q", got)
	}
}
