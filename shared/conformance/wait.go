package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	// Imported under another name: "pod" names the pod under test throughout this package.
	podlayer "github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// PollInterval is how often WaitFor asks for a status.
var PollInterval = 500 * time.Millisecond

// CheckStatus checks what interLink relies on in one pod's status: the pod's UID, name and namespace; one
// status per spec container, named and in spec order (an empty list would read as Succeeded), and likewise
// for init containers; exactly one state set in each, or none; none ready that has not started (Kubernetes
// holds a container unready until its startup probe succeeds).
func CheckStatus(pod *v1.Pod, st interlink.PodStatus) error {
	if st.PodUID != string(pod.UID) {
		return fmt.Errorf("status UID is %q, want the pod's %q (interLink ignores a status of another UID)",
			st.PodUID, pod.UID)
	}
	if st.PodName != pod.Name || st.PodNamespace != pod.Namespace {
		return fmt.Errorf("status names pod %s/%s, want %s/%s", st.PodNamespace, st.PodName, pod.Namespace, pod.Name)
	}
	check := func(kind string, spec []v1.Container, got []v1.ContainerStatus) error {
		if len(got) != len(spec) {
			return fmt.Errorf("%d %s statuses for %d in the spec: there must be one per spec container",
				len(got), kind, len(spec))
		}
		for i, c := range spec {
			if got[i].Name != c.Name {
				return fmt.Errorf("%s status %d is named %q, want %q (spec order)", kind, i, got[i].Name, c.Name)
			}
			n := 0
			for _, set := range []bool{got[i].State.Waiting != nil, got[i].State.Running != nil,
				got[i].State.Terminated != nil} {
				if set {
					n++
				}
			}
			if n > 1 {
				return fmt.Errorf("%s %q has %d states set at once", kind, c.Name, n)
			}
			if got[i].Ready && got[i].Started != nil && !*got[i].Started {
				return fmt.Errorf("%s %q is ready but has not started", kind, c.Name)
			}
		}
		return nil
	}
	if err := check("init container", pod.Spec.InitContainers, st.InitContainers); err != nil {
		return err
	}
	return check("container", pod.Spec.Containers, st.Containers)
}

// StatusOf asks b for pod's status in a call bounded by timeout and checks it with CheckStatus.
func StatusOf(t testing.TB, b backend.Backend, pod *v1.Pod, timeout time.Duration) interlink.PodStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sts, err := b.Status(ctx, []*v1.Pod{pod})
	if err != nil {
		t.Fatalf("Status of pod %s: %v", pod.Name, err)
	}
	if len(sts) != 1 {
		t.Fatalf("Status of one pod answered %d statuses", len(sts))
	}
	if err := CheckStatus(pod, sts[0]); err != nil {
		t.Fatalf("Status of pod %s: %v\n%s", pod.Name, err, FormatStatus(sts[0]))
	}
	return sts[0]
}

// FormatStatus renders a status for a failure message.
func FormatStatus(st interlink.PodStatus) string {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Sprintf("%+v", st)
	}
	return string(b)
}

// WaitFor polls pod's status until cond holds and returns that status; it fails the test when timeout
// passes first, showing the last status. Every status is checked with CheckStatus on the way.
func WaitFor(t testing.TB, b backend.Backend, pod *v1.Pod, timeout time.Duration, what string,
	cond func(interlink.PodStatus) bool) interlink.PodStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := StatusOf(t, b, pod, timeout)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: %s did not happen within %v; last status:\n%s", pod.Name, what, timeout, FormatStatus(st))
		}
		time.Sleep(PollInterval)
	}
}

// WaitForLog polls the log of pod's container until it holds text, and returns the log; it fails the test
// when timeout passes first, showing the last log. A status that says Running only says that the container
// has started: a test that signals the command waits for the line the command prints once its traps are
// set.
func WaitForLog(t testing.TB, b backend.Backend, pod *v1.Pod, container, text string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var buf bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := b.Logs(ctx, logRequest(pod, container, interlink.LogOpts{}), &buf)
		cancel()
		if err == nil && strings.Contains(buf.String(), text) {
			return buf.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: the log of %s did not show %q within %v (last error: %v); it is:\n%s", pod.Name, container, text, timeout, err, buf.String())
		}
		time.Sleep(PollInterval)
	}
}

// SplitByPrefix parts log lines into those that do not start with prefix and those that do, each in its
// order. A test that writes to stdout and stderr tells the two streams apart by a prefix: the engines read
// them through two pipes, so only the order within each stream is the order of writing.
func SplitByPrefix(lines []string, prefix string) (without, with []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			with = append(with, l)
		} else {
			without = append(without, l)
		}
	}
	return without, with
}

// WaitForPhase polls pod's status until the phase Phase gives it (tracked from poll to poll, as the
// virtual kubelet tracks it) is one of phases, and returns that status. It fails the test at once when the
// pod reaches another final phase, and when timeout passes first.
func WaitForPhase(t testing.TB, b backend.Backend, pod *v1.Pod, timeout time.Duration,
	phases ...v1.PodPhase) interlink.PodStatus {
	t.Helper()
	tracked := pod.DeepCopy()
	tracked.Status.Phase = v1.PodPending
	var last interlink.PodStatus
	WaitFor(t, b, pod, timeout, fmt.Sprintf("phase %v", phases), func(st interlink.PodStatus) bool {
		last = st
		tracked.Status.Phase = podlayer.NextPhase(tracked, st)
		if slices.Contains(phases, tracked.Status.Phase) {
			return true
		}
		if tracked.Status.Phase == v1.PodFailed || tracked.Status.Phase == v1.PodSucceeded {
			t.Fatalf("pod %s reached phase %s while waiting for %v; status:\n%s", pod.Name, tracked.Status.Phase,
				phases, FormatStatus(st))
		}
		return false
	})
	return last
}
