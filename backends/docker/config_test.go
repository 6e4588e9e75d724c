package docker

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig(nil)
	if err != nil || c.Pods != 110 || c.Network != "bridge" || c.RestartBackoff.Duration != time.Second ||
		c.RestartBackoffMax.Duration != 5*time.Minute || c.PreExecImage != "busybox:latest" {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	c, err = ParseConfig([]byte(`{"host":"unix:///x.sock","pods":5,"restart_backoff":"2s","default_pull_policy":"Never","gpus":2}`))
	if err != nil || c.Host != "unix:///x.sock" || c.Pods != 5 || c.RestartBackoff.Duration != 2*time.Second ||
		c.DefaultPullPolicy != v1.PullNever || *c.GPUs != 2 {
		t.Errorf("parsed: %+v, %v", c, err)
	}
	for raw, want := range map[string]string{
		`{"podz": 3}`:                     `unknown field "podz"`,
		`{"pods": -1}`:                    "pods must be positive",
		`{"restart_backoff": 5}`:          "duration is a string",
		`{"default_pull_policy": "Soon"}`: "default_pull_policy must be",
		`{"network": "host"}`:             "network must name",
		`{"restart_backoff": "1m", "restart_backoff_max": "1s"}`: "shorter than",
	} {
		if _, err := ParseConfig([]byte(raw)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
	}
}

func TestRestartDelayDoublesAndResets(t *testing.T) {
	t.Parallel()
	b := &Backend{cfg: Config{RestartBackoff: Duration{time.Second}, RestartBackoffMax: Duration{10 * time.Second}}}
	r := &runner{b: b}
	now := time.Now()
	short := pod.Termination{StartedAt: now.Add(-time.Second), FinishedAt: now}
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: 2 * time.Second, 3: 8 * time.Second, 6: 10 * time.Second} {
		if got := r.restartDelay(attempt, short); got > want || got < want-100*time.Millisecond {
			t.Errorf("attempt %d: %v, want %v", attempt, got, want)
		}
	}
	long := pod.Termination{StartedAt: now.Add(-time.Hour), FinishedAt: now}
	if got := r.restartDelay(6, long); got > time.Second {
		t.Errorf("after a long run the back-off starts over: %v", got)
	}
}

func TestLimitWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := &limitWriter{w: &buf, left: 5}
	if n, err := w.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatal(n, err)
	}
	if n, err := w.Write([]byte("defg")); n != 2 || !errors.Is(err, errLimitReached) || buf.String() != "abcde" {
		t.Fatal(n, err, buf.String())
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web.app", Namespace: "ns", UID: "1234-abcd"}}
	if got := containerName(p, "main", 2); got != "idp_main_web.app_ns_1234-abcd_2" {
		t.Errorf("containerName = %q", got)
	}
	if got := pauseName(p); got != "idp_POD_web.app_ns_1234-abcd" {
		t.Errorf("pauseName = %q", got)
	}
	p.Name = strings.Repeat("a", 70)
	if got := hostname(p); len(got) != 63 {
		t.Errorf("hostname has %d characters", len(got))
	}
	if pod.PreExecText(p) != "" {
		t.Error("no annotation, no pre-exec")
	}
}
