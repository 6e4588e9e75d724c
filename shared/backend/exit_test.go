package backend_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

func TestIsBadConfig(t *testing.T) {
	bad := settings.Problems{{Key: "backends.x.config.pods", Msg: "must be positive"}}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{bad, true},
		{fmt.Errorf("starting: %w", bad), true},
		{settings.Bad("backends.x.config", "uri", errors.New("not a URI")), true},
		{settings.Problems{}, false},
		{errors.New("cannot reach the engine"), false},
		{nil, false},
	} {
		if got := backend.IsBadConfig(tc.err); got != tc.want {
			t.Errorf("IsBadConfig(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
