package pod

import (
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

func TestCheckLogOptions(t *testing.T) {
	at := time.Unix(1700000000, 5)
	for _, tc := range []struct {
		name string
		o    interlink.LogOpts
		ok   bool
	}{
		{"none", interlink.LogOpts{}, true},
		{"tail", interlink.LogOpts{Tail: 3, Timestamps: true, Follow: true}, true},
		{"bytes and since", interlink.LogOpts{LimitBytes: 10, SinceSeconds: 5}, true},
		{"tail with bytes", interlink.LogOpts{Tail: 1, LimitBytes: 1}, false},
		{"both sinces", interlink.LogOpts{SinceSeconds: 1, SinceTime: at}, false},
		{"negative tail", interlink.LogOpts{Tail: -1}, false},
		{"negative bytes", interlink.LogOpts{LimitBytes: -1}, false},
		{"negative since", interlink.LogOpts{SinceSeconds: -1}, false},
	} {
		err := CheckLogOptions(tc.o)
		if (err == nil) != tc.ok {
			t.Errorf("%s: CheckLogOptions = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && backend.KindOf(err) != backend.KindInvalid {
			t.Errorf("%s: error kind %v, want invalid", tc.name, backend.KindOf(err))
		}
	}
}

func TestLogSince(t *testing.T) {
	now := time.Unix(1700000000, 500)
	if got := LogSince(interlink.LogOpts{}, now); !got.IsZero() {
		t.Errorf("no since: %v", got)
	}
	if got := LogSince(interlink.LogOpts{SinceSeconds: 30}, now); !got.Equal(now.Add(-30 * time.Second)) {
		t.Errorf("since 30s: %v", got)
	}
	at := time.Unix(1600000000, 7)
	if got := LogSince(interlink.LogOpts{SinceTime: at}, now); !got.Equal(at) {
		t.Errorf("since time: %v", got)
	}
}
