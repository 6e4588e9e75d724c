package labtest

import "testing"

// TestNodeTakesJobs: a busy node (planned by the backfill scheduler, mixed, allocated) is up; a node out of
// service is not, whatever its flags.
func TestNodeTakesJobs(t *testing.T) {
	for state, want := range map[string]bool{
		"idle": true, "mixed": true, "allocated": true, "completing": true, "planned": true, "idle*": true,
		"down": false, "down*": false, "drained": false, "draining": false, "fail": false, "unknown*": false,
		"future": false, "maint": false, "reboot_issued": false, "powered_down~": false, "powering_up#": false,
	} {
		if got := nodeTakesJobs(state); got != want {
			t.Errorf("node in state %q takes jobs: %v, want %v", state, got, want)
		}
	}
}
