package pod

import (
	"errors"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestTerminationMessage(t *testing.T) {
	file := &v1.Container{Name: "c", TerminationMessagePolicy: v1.TerminationMessageReadFile}
	fallback := &v1.Container{Name: "c", TerminationMessagePolicy: v1.TerminationMessageFallbackToLogsOnError}
	logs := func(s string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(s), nil } }
	called := func() ([]byte, error) {
		t.Error("the log was read though the policy does not fall back to it")
		return nil, nil
	}
	long := strings.Repeat("x", MaxTerminationMessageBytes) + "END"
	var short, wide strings.Builder
	for i := range 100 {
		short.WriteString(strings.Repeat("y", 10) + string(rune('a'+i%26)) + "\n") // 100 lines of 12 bytes
		wide.WriteString(strings.Repeat("z", 39) + "\n")                           // 100 lines of 40 bytes
	}
	for _, tc := range []struct {
		name string
		c    *v1.Container
		exit int32
		file string
		logs func() ([]byte, error)
		want string
	}{
		{"the file", file, 0, "DONE", called, "DONE"},
		{"the file's last 4 KiB", file, 1, long, called, long[len(long)-MaxTerminationMessageBytes:]},
		{"no file, policy File", file, 1, "", called, ""},
		{"fallback: success keeps it empty", fallback, 0, "", called, ""},
		{"fallback: the file wins", fallback, 1, "OK", called, "OK"},
		{"fallback: the log of a failed run", fallback, 1, "", logs("DONE"), "DONE"},
		{"fallback: the last 80 lines", fallback, 2, "", logs(short.String()), lastN(short.String(), 80*12)},
		{"fallback: at most 2 KiB", fallback, 2, "", logs(wide.String()), lastN(wide.String(), MaxTerminationLogBytes)},
		{"fallback: an unreadable log says so", fallback, 1, "", func() ([]byte, error) { return nil, errors.New("gone") }, "Error on reading termination message from logs: gone"},
	} {
		if got := TerminationMessage(tc.c, tc.exit, []byte(tc.file), nil, tc.logs); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestTerminationMessageUnreadableFile(t *testing.T) {
	c := &v1.Container{Name: "c", TerminationMessagePolicy: v1.TerminationMessageFallbackToLogsOnError}
	got := TerminationMessage(c, 1, nil, errors.New("a link"), func() ([]byte, error) { return []byte("log"), nil })
	if got != "Error on reading the termination message file: a link" {
		t.Errorf("%q, want the file's error, not the log", got)
	}
}

func lastN(s string, n int) string { return s[len(s)-n:] }

func TestLastLines(t *testing.T) {
	for in, want := range map[string]string{"": "", "a": "a", "a\nb\nc\n": "b\nc\n", "a\nb\nc": "b\nc", "b\nc\n": "b\nc\n"} {
		if got := string(LastLines([]byte(in), 2)); got != want {
			t.Errorf("LastLines(%q, 2) = %q, want %q", in, got, want)
		}
	}
}

func TestWithMessage(t *testing.T) {
	if got := (Termination{}).WithMessage("DONE").Message; got != "DONE" {
		t.Errorf("%q", got)
	}
	if got := (Termination{Message: "Liveness probe failed"}).WithMessage("DONE").Message; got != "Liveness probe failed: DONE" {
		t.Errorf("%q", got)
	}
	if got := (Termination{Message: "m"}).WithMessage("").Message; got != "m" {
		t.Errorf("%q", got)
	}
}
