//go:build bench

package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

func benchPod(i int) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{UID: types.UID(fmt.Sprintf("bench-%08d", i)), Name: "bench-" + strconv.Itoa(i), Namespace: "bench"},
		Spec: v1.PodSpec{RestartPolicy: v1.RestartPolicyNever,
			Containers: []v1.Container{{Name: "main", Image: "busybox:latest", Command: []string{"sleep", "3600"}}}},
	}
}

// BenchmarkDispatcherJournal measures the dispatcher alone over a fake in-process backend with
// BENCH_JOURNAL_PODS (10,000) journaled pods: the single-pod /status p50/p99 at concurrency 8 over
// BENCH_JOURNAL_CALLS (5,000) calls, and the RSS of the dispatcher's process. Run it with -benchtime 1x.
func BenchmarkDispatcherJournal(b *testing.B) {
	n, err := strconv.Atoi(envOr("BENCH_JOURNAL_PODS", "10000"))
	if err != nil || n <= 0 {
		b.Fatalf("BENCH_JOURNAL_PODS: %q is not a positive number", os.Getenv("BENCH_JOURNAL_PODS"))
	}
	calls, err := strconv.Atoi(envOr("BENCH_JOURNAL_CALLS", "5000"))
	if err != nil || calls <= 0 {
		b.Fatalf("BENCH_JOURNAL_CALLS: %q is not a positive number", os.Getenv("BENCH_JOURNAL_CALLS"))
	}

	// The pods are journaled as the dispatcher journals accepted creates, a thousand per transaction; the
	// fake backend of the dispatcher process has every journaled pod.
	dataDir := b.TempDir()
	j, err := dispatcher.OpenJournal(dataDir)
	if err != nil {
		b.Fatal(err)
	}
	pods := make([]*v1.Pod, n)
	var batch []dispatcher.Entry
	for i := range pods {
		pods[i] = benchPod(i)
		batch = append(batch, dispatcher.Entry{UID: string(pods[i].UID), Backend: "fake", RemoteID: "fake-" + string(pods[i].UID),
			Namespace: pods[i].Namespace, Name: pods[i].Name, Created: time.Now().UTC()})
		if len(batch) == 1000 || i == n-1 {
			if err := j.PutAll(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}

	// The dispatcher runs in a process of its own, a binary holding it and its fake backend only
	// (testdata/benchdispatcher), so that its RSS is theirs, not the load generator's.
	cmd := exec.Command(labtest.BuildBinary(b, "./dispatcher/faults/testdata/benchdispatcher"), dataDir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("the dispatcher process did not say where it listens: %v", err)
	}
	p := &proc{t: b, api: "http://" + strings.TrimSpace(addr), client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency}}}
	startRSS, _ := procMemory(cmd.Process.Pid)

	// A few hundred creates through /create, for the rate of the journaled path.
	creates := min(200, n)
	extra := make([]*v1.Pod, creates)
	for i := range extra {
		extra[i] = benchPod(n + i)
	}
	createRate := rate(creates, timed(func() { p.mustCreateAll(extra) }))

	// The first status of a pod is written to the journal (its last known status); the virtual kubelet's
	// later polls of an unchanged pod are not. Both passes ask the same pods, spread over the journal.
	cold := pollJournaled(b, p, pods, calls)
	warm := pollJournaled(b, p, pods, calls)
	rss, hwm := procMemory(cmd.Process.Pid)
	printJournalTable(os.Stdout, journalRow{pods: n, calls: calls, createRate: createRate,
		coldP50: percentile(cold, 0.5), coldP99: percentile(cold, 0.99), p50: percentile(warm, 0.5), p99: percentile(warm, 0.99),
		rss: rss, hwm: hwm, startRSS: startRSS})
}

// pollJournaled asks /status for one pod at a time, benchConcurrency at once, calls times over pods
// spread across the journal, and returns the latencies; a status that is not one Running status of the pod
// asked about fails the benchmark. The load generator shares the machine's CPUs with the dispatcher, so it
// does as little as it can while it measures: the requests are encoded before and the answers read after.
func pollJournaled(b *testing.B, p *proc, pods []*v1.Pod, calls int) []time.Duration {
	asked := make([]*v1.Pod, calls)
	bodies := make([][]byte, calls)
	for i := range asked {
		asked[i] = pods[(i*7919)%len(pods)] // spread over the journal, not one hot key
		raw, err := json.Marshal([]*v1.Pod{asked[i]})
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = raw
	}
	lat := make([]time.Duration, calls)
	answers := make([]string, calls)
	failed := make([]bool, calls)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range benchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(calls) {
					return
				}
				t0 := time.Now()
				code, body, err := p.doRaw("GET", "/status", bodies[i])
				lat[i] = time.Since(t0)
				answers[i], failed[i] = body, err != nil || code != 200
			}
		}()
	}
	wg.Wait()
	bad := 0
	for i, body := range answers {
		var st []interlink.PodStatus
		if failed[i] || json.Unmarshal([]byte(body), &st) != nil || len(st) != 1 || st[0].PodUID != string(asked[i].UID) ||
			len(st[0].Containers) != 1 || st[0].Containers[0].State.Running == nil {
			bad++
		}
	}
	if bad > 0 {
		b.Errorf("%d of %d single-pod statuses were not one Running status of the pod asked about", bad, calls)
	}
	return lat
}
