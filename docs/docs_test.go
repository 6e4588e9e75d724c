// Package docs holds the project's documents; its test checks what in them can be checked against the code:
// the metrics and alerts the operator guide explains, the routes the protocol names, and the template
// backend's stanza the backend guide shows.
package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
	"github.com/interlink-hq/interlink-dispatcher/dispatcher/openapi"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// seriesOfTheDispatcher are the names of every series the dispatcher itself registers.
func seriesOfTheDispatcher() []string {
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		dispatcher.NewMetrics(dispatcher.DefaultConfig(), dispatcher.BuildInfo{}, nil).Describe(ch)
		close(ch)
	}()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil && strings.HasPrefix(m[1], "interlink_dispatcher_") {
			names = append(names, m[1])
		}
	}
	return names
}

// TestOperatorGuideMetrics checks that every series of the dispatcher is explained in the operator guide,
// and that every name the guide gives is one (a name cut short, as in interlink_dispatcher_backend_capacity_…,
// must begin one).
func TestOperatorGuideMetrics(t *testing.T) {
	guide := read(t, "operator-guide.md")
	series := seriesOfTheDispatcher()
	if len(series) < 20 {
		t.Fatalf("only %d series found: %v", len(series), series)
	}
	for _, s := range series {
		if !strings.Contains(guide, s) && !strings.Contains(guide, "…"+strings.TrimPrefix(s, "interlink_dispatcher")) {
			t.Errorf("the operator guide does not explain %s", s)
		}
	}
	for _, name := range regexp.MustCompile(`interlink_dispatcher_[a-z_]*[a-z]`).FindAllString(guide, -1) {
		if !slices.ContainsFunc(series, func(s string) bool { return s == name || strings.HasPrefix(s, name+"_") }) {
			t.Errorf("the operator guide names %s, which the dispatcher does not have", name)
		}
	}
}

// TestOperatorGuideAlerts checks that the guide explains exactly the alerts of deploy/observability.
func TestOperatorGuideAlerts(t *testing.T) {
	guide := read(t, "operator-guide.md")
	rules := read(t, filepath.Join("..", "deploy", "observability", "alerts.yaml"))
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\S+)`).FindAllStringSubmatch(rules, -1)
	if len(alerts) == 0 {
		t.Fatal("no alert found in alerts.yaml")
	}
	var names []string
	for _, a := range alerts {
		names = append(names, a[1])
		if !strings.Contains(guide, "`"+a[1]+"`") {
			t.Errorf("the operator guide does not explain the alert %s", a[1])
		}
	}
	for _, m := range regexp.MustCompile("`(InterlinkDispatcher[A-Za-z]+)`").FindAllStringSubmatch(guide, -1) {
		if !slices.Contains(names, m[1]) {
			t.Errorf("the operator guide explains an alert %s that alerts.yaml does not have", m[1])
		}
	}
}

// TestProtocolRoutes checks that every route of the protocol's tables is in the OpenAPI document.
func TestProtocolRoutes(t *testing.T) {
	doc := read(t, "protocol.md")
	ops := openapi.Operations()
	found := 0
	for _, m := range regexp.MustCompile("`((?:GET|POST|DELETE) /[A-Za-z/{}.]*)`").FindAllStringSubmatch(doc, -1) {
		found++
		if !slices.Contains(ops, m[1]) {
			t.Errorf("protocol.md names %s, which the OpenAPI document lacks (it has %v)", m[1], ops)
		}
	}
	if found < 10 {
		t.Errorf("only %d routes found in protocol.md", found)
	}
}

// TestBackendGuideStanza loads the backend guide's config stanza for the template backend into the real
// dispatcher with `interlink-dispatcher check`, which launches the backend and must report it ok.
func TestBackendGuideStanza(t *testing.T) {
	guide := read(t, "backend-guide.md")
	block := regexp.MustCompile("(?s)```yaml\n(routing:.*?backends:.*?- name: process\n.*?)```").FindStringSubmatch(guide)
	if block == nil {
		t.Fatal("the backend guide has no YAML block with the template's stanza")
	}
	disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
	tmpl := labtest.BuildBinary(t, "./examples/backend-template")
	stanza := strings.Replace(block[1], "binary: bin/backend-template", "binary: "+tmpl, 1)
	stanza = strings.Replace(stanza, "default: docker", "default: process", 1) // the guide's other backends are elided
	dir := t.TempDir()
	cfg := "data_dir: " + filepath.Join(dir, "data") + "\nlisten:\n  tcp: 127.0.0.1:4999\n" + stanza // check binds nothing
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(disp, "check", "--config", path).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^process: ok: .*pods 20$`).Match(out) {
		t.Fatalf("check of the guide's stanza: %v\n%s\nconfig:\n%s", err, out, cfg)
	}
}
