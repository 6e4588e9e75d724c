package backend_test

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// A stamp wins; without one the version comes from the build, never a number written in the source.
func TestBuildVersion(t *testing.T) {
	if got := backend.BuildVersion("v1.2.3"); got != "v1.2.3" {
		t.Fatalf("BuildVersion(v1.2.3) = %q", got)
	}
	if got := backend.BuildVersion(""); got == "" || got == "0.1.0" {
		t.Fatalf("BuildVersion without a stamp = %q, want the build's version or (devel)", got)
	}
}
