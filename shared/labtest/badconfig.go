package labtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// RequireBadConfigExit builds the backend command pkg (e.g. "./cmd/backend-docker") and runs it as the
// dispatcher does, as backend name, once with each config of cases: each run must exit with
// backend.ExitBadConfig and log exactly one error line that says every sentence of its case.
func RequireBadConfigExit(t *testing.T, pkg, name string, cases map[string][]string) {
	t.Helper()
	bin := BuildBinary(t, pkg)
	for raw, want := range cases {
		code, sentences := runBackendWithConfig(t, bin, name, raw)
		if code != backend.ExitBadConfig {
			t.Errorf("config %s: exit status %d, want %d (backend.ExitBadConfig); stderr: %q", raw, code, backend.ExitBadConfig, sentences)
			continue
		}
		if len(sentences) != 1 {
			t.Errorf("config %s: %d error lines on stderr, want one: %q", raw, len(sentences), sentences)
			continue
		}
		for _, w := range want {
			if !strings.Contains(sentences[0], w) {
				t.Errorf("config %s: the sentence %q does not say %q", raw, sentences[0], w)
			}
		}
	}
}

// runBackendWithConfig runs bin once with the go-plugin handshake and a backend Env carrying the config raw,
// and returns its exit status and the messages of its error-level log lines (hclog JSON on stderr).
func runBackendWithConfig(t *testing.T, bin, name, raw string) (int, []string) {
	t.Helper()
	env, err := json.Marshal(backend.Env{Name: name, Instance: "test", Config: json.RawMessage(raw), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), backend.Handshake.MagicCookieKey+"="+backend.Handshake.MagicCookieValue,
		backend.EnvVar+"="+string(env))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running %s: %v", bin, err)
	}
	var errs []string
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		var line struct {
			Level   string `json:"@level"`
			Message string `json:"@message"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Level == "error" {
			errs = append(errs, line.Message)
		}
	}
	return code, errs
}
