package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
)

// log.format picks JSON or text lines, and log.level drops what is below it (case-insensitively, as
// LoadConfig accepts it).
func TestLoggerFollowsConfig(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(dispatcher.LogConfig{Format: "json", Level: "WARN"}, &buf)
	log.Info("dropped")
	log.Warn("kept", "backend", "docker")
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil || rec["msg"] != "kept" || rec["backend"] != "docker" {
		t.Fatalf("json at warn: %q (%v)", buf.String(), err)
	}

	buf.Reset()
	log = newLogger(dispatcher.LogConfig{Format: "text", Level: "debug"}, &buf)
	log.Debug("shown", "pod_uid", "u1")
	if out := buf.String(); !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "msg=shown pod_uid=u1") {
		t.Fatalf("text at debug: %q", out)
	}
}
