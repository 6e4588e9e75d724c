package pod

import (
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// CheckLogOptions refuses, as an invalid request, the log options kubectl itself refuses: Tail with Bytes,
// SinceSeconds with SinceTime, and negative counts. Every backend checks them before asking its engine.
func CheckLogOptions(o interlink.LogOpts) error {
	switch {
	case o.Tail > 0 && o.LimitBytes > 0:
		return backend.Invalid("Tail and Bytes cannot be used together")
	case o.SinceSeconds > 0 && !o.SinceTime.IsZero():
		return backend.Invalid("SinceSeconds and SinceTime cannot be used together")
	case o.Tail < 0 || o.LimitBytes < 0 || o.SinceSeconds < 0:
		return backend.Invalid("Tail, Bytes and SinceSeconds must not be negative")
	}
	return nil
}

// LogSince is the time of the oldest log line o asks for, counted back from now for SinceSeconds; zero when
// o asks for the whole log.
func LogSince(o interlink.LogOpts, now time.Time) time.Time {
	switch {
	case o.SinceSeconds > 0:
		return now.Add(-time.Duration(o.SinceSeconds) * time.Second)
	case !o.SinceTime.IsZero():
		return o.SinceTime
	}
	return time.Time{}
}
