//go:build bench

package faults

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"text/tabwriter"
	"time"
)

// The performance targets the README's "Tests" section names: ratios measured in the same run.
const (
	targetFlatP99       = 1.5  // single-pod p99 at the largest N over the smallest
	targetCallsPerStat  = 0.05 // engine calls per single-pod status under the poll loop
	targetBatchOverList = 1.5  // one-call status of N over one bare engine list
	targetCreate        = 0.9  // create rate over raw (per container; SLURM 0.8, per sbatch)
	targetCreateSLURM   = 0.8
	targetDelete        = 0.9
	targetJournalRSSMB  = 60.0
	targetJournalP99    = 5 * time.Millisecond
)

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func mb(kb int64) string { return fmt.Sprintf("%.1fMB", float64(kb)/1024) }

// machine says where and when the figures were taken.
func machine() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %s, %d CPUs, %s/%s", time.Now().UTC().Format("2006-01-02 15:04 UTC"), host,
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
}

// printLabTable prints one backend's rows and whether each target is met.
func printLabTable(w io.Writer, backend string, rows []labRow) {
	fmt.Fprintf(w, "\n== %s through the dispatcher (%s; concurrency %d, poll every %s per pod)\n", backend, machine(),
		benchConcurrency, benchPollPeriod)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tcreate/s\traw/s\tratio\tdelete/s\traw/s\tratio\tstatus p50\tp99\tcalls\terrors\tengine calls/status\tcalls/s\tone-call all N\tbare list\tratio\tdispatcher RSS (peak)\tbackend RSS (peak)\t")
	for _, r := range rows {
		calls, perSec := "n/a", "n/a"
		if r.callsKnown {
			calls = fmt.Sprintf("%.4f", r.calls/float64(max(r.statuses, 1)))
			perSec = fmt.Sprintf("%.2f", r.calls/r.poll.Seconds())
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.2f\t%.1f\t%.1f\t%.2f\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%.2f\t%s (%s)\t%s (%s)\t\n",
			r.n, r.create, r.rawCreate, r.create/r.rawCreate, r.del, r.rawDelete, r.del/r.rawDelete,
			ms(r.p50), ms(r.p99), r.statuses, r.statusErrors, calls, perSec, ms(r.batch), ms(r.rawList),
			float64(r.batch)/float64(r.rawList), mb(r.dispRSS), mb(r.dispHWM), mb(r.backRSS), mb(r.backHWM))
	}
	tw.Flush()
	for _, r := range rows {
		fmt.Fprintf(w, "  N=%d mean %s\n", r.n, r.createWhere)
		fmt.Fprintf(w, "  N=%d create: %s\n", r.n, r.createCPU)
		fmt.Fprintf(w, "  N=%d mean %s\n", r.n, r.deleteWhere)
		fmt.Fprintf(w, "  N=%d delete: %s\n", r.n, r.deleteCPU)
		if r.statusWhere != "" {
			fmt.Fprintf(w, "  N=%d poll loop: %s\n", r.n, r.statusWhere)
		}
	}
	if len(rows) == 0 {
		return
	}
	first, last := rows[0], rows[len(rows)-1]
	if len(rows) > 1 {
		ratio := float64(last.p99) / float64(first.p99)
		fmt.Fprintf(w, "  target single-pod p99 at N=%d <= %.1fx N=%d: %.2fx  %s\n", last.n, targetFlatP99, first.n, ratio, met(ratio <= targetFlatP99))
	} else {
		fmt.Fprintf(w, "  target single-pod p99 flat in N: n/a (one N)\n")
	}
	createTarget := targetCreate
	if backend == slurmKind.name {
		createTarget = targetCreateSLURM
	}
	var callsOK, callsKnown, batchOK, createOK, deleteOK = true, true, true, true, true
	for _, r := range rows {
		callsKnown = callsKnown && r.callsKnown
		callsOK = callsOK && r.callsKnown && r.calls/float64(max(r.statuses, 1)) <= targetCallsPerStat
		batchOK = batchOK && float64(r.batch) <= targetBatchOverList*float64(r.rawList)
		createOK = createOK && r.create >= createTarget*r.rawCreate
		deleteOK = deleteOK && r.del >= targetDelete*r.rawDelete
	}
	if callsKnown {
		fmt.Fprintf(w, "  target engine calls per single-pod status <= %.2f at every N: %s\n", targetCallsPerStat, met(callsOK))
	} else {
		fmt.Fprintf(w, "  target engine calls per single-pod status <= %.2f: n/a (the backend exports no engine-call counter)\n", targetCallsPerStat)
	}
	fmt.Fprintf(w, "  target one-call status <= %.1fx one bare list at every N: %s\n", targetBatchOverList, met(batchOK))
	fmt.Fprintf(w, "  target create >= %.1fx raw at every N: %s\n", createTarget, met(createOK))
	fmt.Fprintf(w, "  target delete >= %.1fx raw at every N: %s\n", targetDelete, met(deleteOK))
}

// journalRow is what the dispatcher-only benchmark gave.
type journalRow struct {
	pods, calls                int
	createRate                 float64
	coldP50, coldP99, p50, p99 time.Duration
	rss, hwm, startRSS         int64 // kB, of the dispatcher's process
}

// printJournalTable prints the dispatcher-only benchmark's figures.
func printJournalTable(w io.Writer, r journalRow) {
	fmt.Fprintf(w, "\n== dispatcher alone, fake in-process backend, in a process of its own (%s; concurrency %d)\n", machine(), benchConcurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "journaled pods\tcreate/s\tstatus calls\tfirst status p50\tp99\tagain p50\tp99\tdispatcher RSS (peak)\tRSS once started\t")
	fmt.Fprintf(tw, "%d\t%.0f\t%d\t%s\t%s\t%s\t%s\t%s (%s)\t%s\t\n", r.pods, r.createRate, r.calls, ms(r.coldP50), ms(r.coldP99),
		ms(r.p50), ms(r.p99), mb(r.rss), mb(r.hwm), mb(r.startRSS))
	tw.Flush()
	fmt.Fprintf(w, "  (a pod's first status is written to the journal; asking again about an unchanged pod is not)\n")
	fmt.Fprintf(w, "  target single-pod /status p99 < %s (asked again): %s\n", targetJournalP99, met(r.p99 < targetJournalP99))
	fmt.Fprintf(w, "  target dispatcher RSS < %.0f MB (its process: the dispatcher and the fake backend): %s\n", targetJournalRSSMB,
		met(float64(r.rss)/1024 < targetJournalRSSMB))
}
