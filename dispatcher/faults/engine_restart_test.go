package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// restartedPods is how many pods run on the engine while it restarts.
const restartedPods = 6

// restartEnv must be 1 for the engine restarts to run. deploy/test.sh sets it in the phase where this package
// runs alone: `go test ./...` runs packages side by side, and a restart there would break the tests of the
// others' packages using the engine.
const restartEnv = "INTERLINK_FAULTS_RESTART_ENGINES"

// engineServices names, for each backend, the lab service whose restart the backend must ride out.
var engineServices = map[string]string{"docker": "docker", "podman": "podman", "slurm": "slurmctld"}

// Each engine restarted under running pods (dockerd, the Podman service, slurmctld), as deploy/lab/lab.sh
// starts them: while it is down /status keeps answering every pod and never says one is unknown; afterwards
// every pod (restartPolicy Always) runs again, the engine holds exactly one object set per pod, and deletes
// leave nothing.
//
// It is not parallel: an engine restart disturbs whatever else uses the engine, so it runs on its own before
// the package's parallel tests (and deploy/test.sh runs the package after every other one).
func TestEngineRestart(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.name, func(t *testing.T) {
			var why string
			switch {
			case os.Getenv(restartEnv) != "1":
				why = fmt.Sprintf("engine restarts run only with %s=1, as deploy/test.sh sets it when this package runs alone", restartEnv)
			case os.Geteuid() != 0:
				why = "restarting an engine of the lab needs root (deploy/lab/lab.sh restart)"
			}
			if why != "" {
				if labtest.InCI() {
					t.Fatal(why)
				}
				t.Skip(why)
			}
			d := start(t, "restart-"+k.name, k)
			var pods []*v1.Pod
			for i := range restartedPods {
				p := d.pod(k, fmt.Sprintf("r%d", i))
				p.Spec.RestartPolicy = v1.RestartPolicyAlways
				grace := int64(1) // dockerd stops each container within its grace period on the way down
				p.Spec.TerminationGracePeriodSeconds = &grace
				pods = append(pods, p)
			}
			d.mustCreateAll(pods)
			d.waitRunning(pods, 2*time.Minute)
			units := d.unitIDs(k)

			// Poll /status as the virtual kubelet does for as long as the restart takes.
			restarted := make(chan error, 1)
			var out []byte
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, "bash", filepath.Join(labtest.RepoRoot(), "deploy", "lab", "lab.sh"), "restart", engineServices[k.name])
				var err error
				out, err = cmd.CombinedOutput()
				restarted <- err
			}()
			polls, failures := 0, []string{}
			var err error
		poll:
			for {
				select {
				case err = <-restarted:
					break poll
				case <-time.After(500 * time.Millisecond):
				}
				polls++
				st, serr := d.statuses(pods)
				if serr != nil {
					failures = append(failures, serr.Error())
					continue
				}
				for i, s := range st {
					if notFound(s) {
						failures = append(failures, fmt.Sprintf("pod %s reported NotFound", pods[i].UID))
					}
				}
			}
			if err != nil {
				t.Fatalf("lab.sh restart %s: %v\n%s", engineServices[k.name], err, out)
			}
			t.Logf("%s restarted; /status polled %d times meanwhile:\n%s", engineServices[k.name], polls, strings.TrimSpace(string(out)))
			if len(failures) > 0 {
				t.Errorf("while %s restarted, /status failed or lost pods %d times: %s", engineServices[k.name], len(failures), firstN(dedupe(failures), 10))
			}
			k.require(t)

			d.waitRunning(pods, 2*time.Minute)
			// The pods ride the restart out: the same pause container (Docker restarts it), the same Podman
			// pod, the same SLURM job.
			if d.settle(k, pods, time.Minute) {
				d.sameUnits(k, pods, units, "after the engine's restart")
			}
			d.mustDeleteAll(pods)
			d.settle(k, nil, 90*time.Second)
			if v, _ := d.metric("interlink_dispatcher_journal_pods"); v != 0 {
				t.Errorf("the journal holds %v entries after every pod was deleted", v)
			}
		})
	}
}

// dedupe drops repeated sentences, keeping the first of each and its order.
func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
