package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	podlayer "github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// logLines is what the log scenarios' pod writes, a second apart so that times can tell lines apart.
const logLines = "line 1\nline 2\nline 3\nline 4\nline 5\n"

// logs runs the log scenarios: those reading a finished container's log share one pod.
func (h *harness) logs(group *testing.T) {
	var pod *v1.Pod
	broken := false
	// shared makes the pod on first use, so that it is not made when every scenario using it is skipped;
	// it is deleted when the group ends. Its failures are reported on the subtest that made it.
	shared := func(t *testing.T) *v1.Pod {
		t.Helper()
		if broken {
			t.Fatal("the shared log pod did not succeed: see the first log scenario that ran")
		}
		if pod != nil {
			return pod
		}
		broken = true
		pod = NewPod("logs", ShellContainer("main", "for i in 1 2 3 4 5; do echo line $i; sleep 1; done"))
		res, err := h.b.Create(h.ctx(t), h.request(pod, Objects{}))
		h.deleteAtEnd(group, pod, &res)
		if err != nil {
			t.Fatalf("Create of pod %s: %v", pod.Name, err)
		}
		h.waitPhase(t, pod, v1.PodSucceeded)
		broken = false
		return pod
	}
	// The shared pod's subtests run one after the other: they only read.
	seq := func(name string, f func(t *testing.T, pod *v1.Pod)) {
		group.Run(name[strings.LastIndex(name, "/")+1:], func(t *testing.T) {
			if reason, ok := h.o.Skip[name]; ok {
				h.skip(t, name, "the backend's test skips it: "+reason)
			}
			f(t, shared(t))
		})
	}
	seq(ScenarioLogsAll, h.logsAll)
	seq(ScenarioLogsTail, h.logsTail)
	seq(ScenarioLogsBytes, h.logsBytes)
	seq(ScenarioLogsTimestamps, func(t *testing.T, pod *v1.Pod) { h.timestamped(t, pod) })
	seq(ScenarioLogsSinceTime, h.logsSinceTime)
	seq(ScenarioLogsSinceSeconds, h.logsSinceSeconds)
	seq(ScenarioLogsUnknown, h.logsUnknown)
	h.run(group, ScenarioLogsFollow, nil, h.logsFollow)
	h.run(group, ScenarioLogsNoContainer, nil, h.logsNoContainer)
	h.run(group, ScenarioLogsPrevious, h.needs(backend.FeatureRestartPolicyOnFailure, "emptyDir"), h.logsPrevious)
}

func (h *harness) logsAll(t *testing.T, pod *v1.Pod) {
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{}); got != logLines {
		t.Errorf("log = %q, want %q", got, logLines)
	}
}

func (h *harness) logsTail(t *testing.T, pod *v1.Pod) {
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{Tail: 2}); got != "line 4\nline 5\n" {
		t.Errorf("log with Tail 2 = %q, want the last two lines", got)
	}
}

func (h *harness) logsBytes(t *testing.T, pod *v1.Pod) {
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{LimitBytes: 9}); got != logLines[:9] {
		t.Errorf("log with Bytes 9 = %q, want the first 9 bytes %q", got, logLines[:9])
	}
}

// timestamped reads the log with Timestamps and returns each line's time, checking the format.
func (h *harness) timestamped(t *testing.T, pod *v1.Pod) []time.Time {
	t.Helper()
	got := h.mustLogs(t, pod, "main", interlink.LogOpts{Timestamps: true})
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("log with Timestamps has %d lines, want 5:\n%s", len(lines), got)
	}
	var times []time.Time
	for i, l := range lines {
		ts, text, ok := strings.Cut(l, " ")
		if !ok || text != fmt.Sprintf("line %d", i+1) {
			t.Fatalf("line %d with Timestamps is %q, want \"<RFC3339Nano time> line %d\"", i+1, l, i+1)
		}
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("line %d with Timestamps: the time %q is not RFC3339Nano: %v", i+1, ts, err)
		}
		if i > 0 && tm.Before(times[i-1]) {
			t.Errorf("line %d is timestamped %v, before line %d (%v)", i+1, tm, i, times[i-1])
		}
		times = append(times, tm)
	}
	// The pod sleeps a second between lines; a log timestamped at read time, or all at once, would not.
	if span := times[4].Sub(times[0]); span < 3*time.Second || span > 30*time.Second {
		t.Errorf("lines 1 to 5 are timestamped %v apart, want about 4 s: they are not the times the lines were written", span)
	}
	return times
}

func (h *harness) logsSinceTime(t *testing.T, pod *v1.Pod) {
	times := h.timestamped(t, pod)
	// Kubernetes sends sinceTime to the second (metav1.Time), so the harness does too: the first whole
	// second after line 2 comes no later than line 3, which was written at least a second after line 2.
	since := times[1].Truncate(time.Second).Add(time.Second)
	if since.After(times[2]) {
		t.Fatalf("line 3 (%v) was written less than a second after line 2 (%v)", times[2], times[1])
	}
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{SinceTime: since}); got != "line 3\nline 4\nline 5\n" {
		t.Errorf("log since %v (between lines 2 at %v and 3 at %v) = %q, want lines 3 to 5", since, times[1],
			times[2], got)
	}
}

func (h *harness) logsSinceSeconds(t *testing.T, pod *v1.Pod) {
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{SinceSeconds: 3600}); got != logLines {
		t.Errorf("log of the last hour = %q, want every line", got)
	}
	times := h.timestamped(t, pod)
	if wait := time.Until(times[4].Add(3 * time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{SinceSeconds: 1}); got != "" {
		t.Errorf("log of the last second, 3 s after the last line = %q, want nothing", got)
	}
}

func (h *harness) logsFollow(t *testing.T) {
	// Long enough for a slow backend (a batch system), on a busy machine, to report Running before it ends
	// and still leave the 3 s lead below.
	pod := NewPod("follow", ShellContainer("main", "echo start; sleep 15; echo end"))
	h.create(t, pod, Objects{})
	h.waitPhase(t, pod, v1.PodRunning)

	ctx, cancel := context.WithTimeout(context.Background(), h.o.PodTimeout)
	defer cancel()
	w := &waitWriter{}
	err := h.b.Logs(ctx, logRequest(pod, "main", interlink.LogOpts{Follow: true}), w)
	ended := time.Now()
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("Logs with Follow did not end within %v of the container ending", h.o.PodTimeout)
	}
	if err != nil {
		t.Fatalf("Logs with Follow: %v", err)
	}
	if got := w.buf.String(); got != "start\nend\n" {
		t.Errorf("followed log = %q, want %q", got, "start\nend\n")
	}
	// "start" must have been written as it came, seconds before the stream ended, not all at the end.
	for i, text := range w.texts {
		if strings.Contains(text, "start") {
			if lead := ended.Sub(w.writes[i]); lead < 3*time.Second {
				t.Errorf("the first line reached the follower only %v before the stream ended: the log is not streamed", lead)
			}
			break
		}
	}
	st := StatusOf(t, h.b, pod, h.o.CallTimeout)
	if podlayer.NextPhase(pod, st) == v1.PodRunning {
		// Some engines report the exit a moment after the stream ends; it must come soon.
		h.waitPhase(t, pod, v1.PodSucceeded)
	}
}

func (h *harness) logsPrevious(t *testing.T) {
	c := Mount(ShellContainer("main",
		"if [ -f /state/ran ]; then echo second run; sleep 3600; else touch /state/ran; echo first run; exit 1; fi"),
		"state", "/state", "", false)
	pod := WithVolumes(NewPod("previous", c), EmptyDirVolume("state"))
	pod.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	h.create(t, pod, Objects{})
	st := WaitFor(t, h.b, pod, h.o.PodTimeout, "a restart of main", func(st interlink.PodStatus) bool {
		cs := st.Containers[0]
		return cs.RestartCount >= 1 && cs.State.Running != nil
	})
	if last := st.Containers[0].LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
		t.Errorf("restarted container's lastState is not its terminated first run (exit 1):\n%s", FormatStatus(st))
	}
	// The second run's line may take a moment to be written after the restart.
	deadline := time.Now().Add(h.o.PodTimeout)
	for {
		cur := h.mustLogs(t, pod, "main", interlink.LogOpts{})
		if strings.Contains(cur, "second run") {
			if strings.Contains(cur, "first run") {
				t.Errorf("the current log holds the previous run's line too: %q", cur)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted container's log never showed its second run; it is %q", cur)
		}
		time.Sleep(PollInterval)
	}
	if prev := h.mustLogs(t, pod, "main", interlink.LogOpts{Previous: true}); prev != "first run\n" {
		t.Errorf("log with Previous = %q, want %q", prev, "first run\n")
	}
}

// logsUnknown checks that the log of a pod or container the backend does not know is a KindNotFound error,
// which the dispatcher answers with 404, rather than an empty log or a 500.
func (h *harness) logsUnknown(t *testing.T, pod *v1.Pod) {
	unknown := NewPod("logsunknown", ShellContainer("main", "true"))
	if _, err := h.logsOf(t, unknown, "main", interlink.LogOpts{}); backend.KindOf(err) != backend.KindNotFound {
		t.Errorf("Logs of a pod the backend never saw: %v (kind %v), want a not-found error", err, backend.KindOf(err))
	}
	if _, err := h.logsOf(t, pod, "nosuch", interlink.LogOpts{}); backend.KindOf(err) != backend.KindNotFound {
		t.Errorf("Logs of a container the pod does not have: %v (kind %v), want a not-found error", err,
			backend.KindOf(err))
	}
}
