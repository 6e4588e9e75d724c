package pod

import (
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// The shim and the pod layer must spell the start error alike: backends report either.
func TestStartErrorReasonMatchesShim(t *testing.T) {
	if ReasonStartError != shim.ReasonStartError {
		t.Fatalf("pod.ReasonStartError = %q, shim.ReasonStartError = %q", ReasonStartError, shim.ReasonStartError)
	}
}
