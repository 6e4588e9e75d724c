package backend

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// A duration a backend logs reaches the dispatcher as the dispatcher writes its own: "1.5s", not nanoseconds.
func TestBackendLogsDurationsAsDurations(t *testing.T) {
	var buf bytes.Buffer
	slog.New(newHclogJSONHandler(&buf, slog.LevelInfo)).Info("pod deleted", "grace", 1500*time.Millisecond,
		slog.Group("g", "wait", time.Minute))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if line["grace"] != "1.5s" {
		t.Errorf("grace = %#v, want \"1.5s\" (line %s)", line["grace"], buf.String())
	}
	if g, _ := line["g"].(map[string]any); g["wait"] != "1m0s" {
		t.Errorf("g.wait = %#v, want \"1m0s\" (line %s)", line["g"], buf.String())
	}
}
