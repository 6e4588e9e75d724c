package settings

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration written in a config as a Go duration string: "250ms", "30s", "5m", "1h30m".
// A bare number is refused: it would be read as nanoseconds by some and as seconds by others.
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String is the duration as a config writes it.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalJSON reads a duration string; the error quotes the whole value.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s is not a duration such as \"30s\" or \"10m\" (write it as a string with a unit)", shortJSON(b))
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// ParseDuration reads a Go duration string. Its error quotes the whole value and gives an example in the
// unit the value seems to mean: "10 minutes" is not a duration such as "10m".
func ParseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as %q", s, durationExample(s))
	}
	return v, nil
}

// durationExample is the duration the text s most likely means, as a config writes it: "10 minutes" is
// "10m", "5 sec" is "5s"; "30s" when nothing can be made of it.
func durationExample(s string) string {
	t := strings.ToLower(strings.TrimSpace(s))
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		return "30s"
	}
	for _, u := range []struct{ prefix, unit string }{
		{"ms", "ms"}, {"milli", "ms"}, {"us", "us"}, {"µs", "us"}, {"micro", "us"}, {"ns", "ns"}, {"nano", "ns"},
		{"s", "s"}, {"m", "m"}, {"h", "h"},
	} {
		if strings.HasPrefix(unit, u.prefix) {
			return num + u.unit
		}
	}
	if unit == "" {
		return num + "s"
	}
	return "30s"
}

// shortJSON is a JSON value as an error may show it: cut after 64 bytes.
func shortJSON(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
