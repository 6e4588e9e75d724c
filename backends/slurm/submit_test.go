package slurm

import (
	"log/slog"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// cancelBackend is a backend whose scancel is the command line given, for the cancellation paths alone.
func cancelBackend(scancel commandLine) *Backend {
	b := &Backend{cfg: &settings{Config: Config{CommandTimeout: Duration(10 * time.Second)}, scancel: scancel},
		log: slog.Default(), metrics: newBackendMetrics()}
	b.queue = newQueueView(0, time.Duration(b.cfg.CommandTimeout), b.querySqueue)
	b.cancels = b.newCancelBatch()
	return b
}

// scancel tells of a job that is already over in several ways, each of which is "gone", not a failure of
// the delete: its message (when it prints one), or only its exit status, SLURM's error number truncated to a
// byte, when it prints nothing. A job that had just ended made scancel --signal=TERM --full exit 229
// (ESLURM_ALREADY_DONE, 2021) with an empty stderr, and the delete failed.
func TestCancelJobOfAFinishedJobIsGone(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		gone bool
	}{
		{"already done, silent", &commandError{cmd: "scancel", msg: "exit status 229", code: 229}, true},
		{"invalid job id, silent", &commandError{cmd: "scancel", msg: "exit status 225", code: 225}, true},
		{"invalid job id", &commandError{cmd: "scancel", msg: "scancel: error: Kill job error on job id 9: Invalid job id specified", code: 1}, true},
		{"already completing", &commandError{cmd: "scancel", msg: "scancel: error: Kill job error on job id 9: Job/step already completing or completed", code: 1}, true},
		{"denied", &commandError{cmd: "scancel", msg: "scancel: error: Kill job error on job id 9: Access/permission denied", code: 1}, false},
		{"controller down", &commandError{cmd: "scancel", msg: "scancel: error: Unable to contact slurm controller", code: 1}, false},
		{"not run", &commandError{cmd: "scancel", msg: "no such file", code: -1, notRun: true}, false},
	} {
		if got := jobGone(c.err); got != c.gone {
			t.Errorf("%s: jobGone(%v) = %v, want %v", c.name, c.err, got, c.gone)
		}
	}
	// Through cancelJob, with the exit the real scancel gave (status 229, nothing on stderr or stdout): the
	// lab's SLURM cannot be made to hit that moment on demand.
	if err := cancelBackend(commandLine{"sh", "-c", "exit 229", "scancel"}).cancelJob("9", "--signal=TERM", "--full"); err != nil {
		t.Fatalf("cancelling a job scancel says is already done: %v", err)
	}
	if err := cancelBackend(commandLine{"sh", "-c", "echo 'scancel: error: Access/permission denied' >&2; exit 1", "scancel"}).cancelJob("9"); err == nil {
		t.Fatal("a refused cancellation was taken for a job gone")
	}
}

// The lab's scancel on a job id SLURM does not know, as the backend signals a running job: gone.
func TestLabCancelUnknownJobIsGone(t *testing.T) {
	labtest.RequireSLURM(t)
	b := cancelBackend(commandLine{"scancel"})
	for _, args := range [][]string{{"--signal=TERM", "--full"}, nil} {
		if err := b.cancelJob("999999999", args...); err != nil {
			t.Fatalf("scancel %v of an unknown job: %v", args, err)
		}
	}
}
