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
	"github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, w, err := ParseConfig("docker", nil)
	if err != nil || len(w) != 0 || c.Pods != 110 || c.Network != "bridge" || c.RestartBackoff.D() != time.Second ||
		c.RestartBackoffMax.D() != 5*time.Minute || c.PreExecImage != "busybox:latest" {
		t.Errorf("defaults: %+v, %v, %v", c, w, err)
	}
	c, _, err = ParseConfig("docker", []byte(`{"host":"unix:///x.sock","pods":5,"restart_backoff":"2s","default_pull_policy":"Never","gpus":2}`))
	if err != nil || c.Host != "unix:///x.sock" || c.Pods != 5 || c.RestartBackoff.D() != 2*time.Second ||
		c.DefaultPullPolicy != v1.PullNever || *c.GPUs != 2 {
		t.Errorf("parsed: %+v, %v", c, err)
	}
	for raw, want := range map[string]string{
		`{"podz": 3}`:                     "backends.docker.config.podz: is not a known key (the keys here are ",
		`{"restartBackoff": "1s"}`:        "backends.docker.config.restartBackoff: is not a known key; the key is spelled restart_backoff",
		`{"pods": -1}`:                    "backends.docker.config.pods: must be positive, not -1",
		`{"restart_backoff": 5}`:          `backends.docker.config.restart_backoff: 5 is not a duration such as "30s" or "10m"`,
		`{"restart_backoff": "5 min"}`:    `backends.docker.config.restart_backoff: "5 min" is not a duration such as "5m"`,
		`{"default_pull_policy": "Soon"}`: "backends.docker.config.default_pull_policy: must be Always, IfNotPresent or Never",
		`{"network": "host"}`:             "backends.docker.config.network: must name",
		`{"restart_backoff": "1m", "restart_backoff_max": "1s"}`: "backends.docker.config.restart_backoff_max: 1s is shorter than restart_backoff (1m0s)",
	} {
		if _, _, err := ParseConfig("docker", []byte(raw)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
	}
}

// TestParseConfigReportsEveryProblem: a type error does not hide a value error, nor one value error another.
func TestParseConfigReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, _, err := ParseConfig("docker", []byte(`{"pods": -2, "network": "none", "gpus": "two", "restart_backoff": "soon"}`))
	var ps settings.Problems
	if !errors.As(err, &ps) || len(ps) != 4 {
		t.Fatalf("err = %v, want 4 settings.Problems", err)
	}
	for _, key := range []string{"pods", "network", "gpus", "restart_backoff"} {
		if !ps.Has("backends.docker.config." + key) {
			t.Errorf("no problem names %s: %v", key, err)
		}
	}
}

func TestRestartDelayDoublesAndResets(t *testing.T) {
	t.Parallel()
	b := &Backend{cfg: Config{RestartBackoff: Duration(time.Second), RestartBackoffMax: Duration(10 * time.Second)}}
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
