package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestReadKeepsStampedValues(t *testing.T) {
	i := Read("v1.2.3", "abc123")
	if i.Version != "v1.2.3" || i.Commit != "abc123" || i.GoVersion != runtime.Version() {
		t.Fatalf("Read(v1.2.3, abc123) = %+v", i)
	}
	if got, want := i.Line("backend-docker"), "backend-docker v1.2.3 (commit abc123, "+runtime.Version()+")"; got != want {
		t.Fatalf("Line = %q, want %q", got, want)
	}
}

func TestReadFillsWhatIsNotStamped(t *testing.T) {
	i := Read("", "")
	// A test binary records no main module version: "(devel)" either from the toolchain or as the fallback.
	if i.Version == "" || i.Commit == "" || !strings.HasPrefix(i.GoVersion, "go") {
		t.Fatalf("Read(\"\", \"\") left something empty: %+v", i)
	}
}

func TestAsked(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"--version"}, true},
		{[]string{"-version"}, true},
		{nil, false},
		{[]string{"--config", "x"}, false},
		{[]string{"--version", "extra"}, false},
		{[]string{"/.interlink/state/spec.json"}, false},
	} {
		if got := Asked(c.args); got != c.want {
			t.Errorf("Asked(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}
