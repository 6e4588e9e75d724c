package dispatcher

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeConfig writes a config file beside two executable "binaries" (bin/a, bin/b) and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	for _, b := range []string{"a", "b"} {
		os.WriteFile(filepath.Join(dir, "bin", b), []byte("#!/bin/sh\n"), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "bin", "notexec"), []byte("x"), 0o644)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodConfig = `
data_dir: data
listen:
  tcp: 127.0.0.1:4100
  unix: /tmp/x.sock
timeouts:
  create: 20s
routing:
  default: a
  rules:
    - name: gpu
      backend: b
      match:
        resources: [nvidia.com/gpu]
        node_selector: {zone: b}
backends:
  - name: a
    binary: bin/a
    config:
      socket: /var/run/docker.sock
      pods: 50
      nested: {x: [1, 2]}
  - name: b
    binary: bin/b
    enabled: false
    sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`

func TestLoadConfig(t *testing.T) {
	path := writeConfig(t, goodConfig)
	cfg, err := LoadConfig(LoadOptions{Path: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	if cfg.DataDir != filepath.Join(dir, "data") || cfg.Backends[0].Binary != filepath.Join(dir, "bin/a") {
		t.Fatalf("relative paths not taken from the config's directory: %s %s", cfg.DataDir, cfg.Backends[0].Binary)
	}
	if cfg.Timeouts.Create != 20*time.Second || cfg.Timeouts.Status != 10*time.Second || cfg.Limits.MaxBodyBytes != 10<<20 {
		t.Fatalf("timeouts/limits: %+v %+v", cfg.Timeouts, cfg.Limits)
	}
	if cfg.Routing.Annotation != DefaultRoutingAnnotation || cfg.Routing.Rules[0].Match.NodeSelector["zone"] != "b" {
		t.Fatalf("routing: %+v", cfg.Routing)
	}
	if !cfg.Backends[0].IsEnabled() || cfg.Backends[1].IsEnabled() {
		t.Fatal("enabled flags wrong")
	}
	if cfg.Instance == "" {
		t.Fatal("no default instance")
	}
	raw, _ := json.Marshal(cfg.Backends[0].Config)
	if string(raw) != `{"nested":{"x":[1,2]},"pods":50,"socket":"/var/run/docker.sock"}` {
		t.Fatalf("backend config as JSON: %s", raw)
	}
}

// A policy section is read as written and normalised; a stanza without one allows nothing.
func TestLoadConfigPolicy(t *testing.T) {
	path := writeConfig(t, strings.Replace(goodConfig, "    binary: bin/a", `    binary: bin/a
    policy:
      host_paths:
        - {path: /data/}
        - {path: /scratch, read_only: false}
      privileged: true
      host_network: true
      capabilities: [cap_net_admin, SYS_TIME]`, 1))
	cfg, err := LoadConfig(LoadOptions{Path: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	pa := cfg.Backends[0].Policy
	if len(pa.HostPaths) != 2 || pa.HostPaths[0].Path != "/data" || !pa.HostPaths[0].IsReadOnly() ||
		pa.HostPaths[1].Path != "/scratch" || pa.HostPaths[1].IsReadOnly() || !pa.Privileged || !pa.HostNetwork ||
		strings.Join(pa.Capabilities, ",") != "NET_ADMIN,SYS_TIME" {
		t.Fatalf("policy of backends[0]: %+v", pa)
	}
	pb := cfg.Backends[1].Policy
	if len(pb.HostPaths) != 0 || pb.Privileged || pb.HostNetwork || len(pb.Capabilities) != 0 {
		t.Fatalf("a stanza without policy allows something: %+v", pb)
	}
}

func TestLoadConfigOverrides(t *testing.T) {
	path := writeConfig(t, goodConfig)
	env := []string{
		"INTERLINK_DISPATCHER_LISTEN_TCP=0.0.0.0:5000",
		"INTERLINK_DISPATCHER_TIMEOUTS_STATUS=3s",
		"INTERLINK_DISPATCHER_LIMITS_MAX_BODY_BYTES=1024",
		"INTERLINK_DISPATCHER_DATA_DIR=/srv/d",
		"INTERLINK_DISPATCHER_BACKENDS_B_ENABLED=true",
		"INTERLINK_DISPATCHER_BACKENDS_A_ARGS=-v, --x",
		"INTERLINK_DISPATCHER_BACKEND_ENV={}", // a backend's own env, not config
		"OTHER=1",
	}
	cfg, err := LoadConfig(LoadOptions{Path: path, Environ: env, Listen: "unix:///run/d.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.TCP != "0.0.0.0:5000" || cfg.Listen.Unix != "/run/d.sock" || cfg.Timeouts.Status != 3*time.Second ||
		cfg.Limits.MaxBodyBytes != 1024 || cfg.DataDir != "/srv/d" || !cfg.Backends[1].IsEnabled() ||
		strings.Join(cfg.Backends[0].Args, "|") != "-v|--x" {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	cfg, err = LoadConfig(LoadOptions{Path: path, Environ: env, Listen: "127.0.0.1:9"})
	if err != nil || cfg.Listen.TCP != "127.0.0.1:9" {
		t.Fatalf("--listen host:port: %v %+v", err, cfg.Listen)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		env  []string
		want []string
	}{
		{"unknown top-level key", goodConfig + "colour: red\n", nil, []string{"colour"}},
		{"unknown nested key", strings.Replace(goodConfig, "  create: 20s", "  create: 20s\n  creat: 1s", 1), nil, []string{"timeouts", "creat"}},
		{"unknown key in a backend", strings.Replace(goodConfig, "    binary: bin/a", "    binary: bin/a\n    binray: x", 1), nil, []string{"backends[0]", "binray"}},
		{"wrong type", strings.Replace(goodConfig, "data_dir: data", "data_dir: data\nlimits: {max_body_bytes: lots}", 1), nil, []string{"limits.max_body_bytes"}},
		{"duration without unit", strings.Replace(goodConfig, "create: 20s", "create: 20", 1), nil, []string{"timeouts.create", "unit"}},
		{"bad duration", strings.Replace(goodConfig, "create: 20s", "create: soon", 1), nil, []string{"timeouts.create"}},
		{"duration in words", strings.Replace(goodConfig, "create: 20s", "create: 10 minutes", 1), nil,
			[]string{`config key timeouts.create: "10 minutes" is not a duration such as "10m"`}},
		{"camelCase key", strings.Replace(goodConfig, "  unix: /tmp/x.sock", "  unix: /tmp/x.sock\n  unixMode: \"0600\"", 1), nil,
			[]string{"config key listen.unixMode is not a known key; the key is spelled unix_mode"}},
		{"camelCase key in a backend", strings.Replace(goodConfig, "    binary: bin/a", "    binary: bin/a\n    policy: {hostNetwork: true}", 1), nil,
			[]string{"config key backends[0].policy.hostNetwork is not a known key; the key is spelled host_network"}},
		{"missing binary", strings.Replace(goodConfig, "bin/a", "bin/missing", 1), nil, []string{"backends[0].binary", "does not exist"}},
		{"binary not executable", strings.Replace(goodConfig, "bin/a", "bin/notexec", 1), nil, []string{"backends[0].binary", "not an executable"}},
		{"unknown default", strings.Replace(goodConfig, "default: a", "default: z", 1), nil, []string{"routing.default", `"z"`, "a, b"}},
		{"disabled default", strings.Replace(goodConfig, "default: a", "default: b", 1), nil, []string{"routing.default", "disabled"}},
		{"rule to unknown backend", strings.Replace(goodConfig, "backend: b", "backend: q", 1), nil, []string{"routing.rules[0].backend"}},
		{"create budget over interLink's wait", strings.Replace(goodConfig, "create: 20s", "create: 3m", 1), nil, []string{"timeouts.create", "120s"}},
		{"bad sha256", strings.Replace(goodConfig, "0123456789abcdef0123", "xyz", 1), nil, []string{"backends[1].sha256"}},
		{"duplicate backend", strings.Replace(goodConfig, "name: b", "name: a", 1), nil, []string{"listed twice"}},
		{"bad env value", goodConfig, []string{"INTERLINK_DISPATCHER_TIMEOUTS_CREATE=forever"}, []string{"INTERLINK_DISPATCHER_TIMEOUTS_CREATE", "timeouts.create"}},
		{"unknown env var", goodConfig, []string{"INTERLINK_DISPATCHER_LISTEN_TPC=x"}, []string{"INTERLINK_DISPATCHER_LISTEN_TPC", "not a config key"}},
		{"env for unknown backend", goodConfig, []string{"INTERLINK_DISPATCHER_BACKENDS_ZED_ENABLED=true"}, []string{"BACKENDS_ZED", "zed"}},
		{"unknown key in a policy", strings.Replace(goodConfig, "    binary: bin/a", "    binary: bin/a\n    policy: {hostpaths: [{path: /data}]}", 1), nil,
			[]string{"config key backends[0].policy.hostpaths is not a known key"}},
		{"unknown key in a host path", strings.Replace(goodConfig, "    binary: bin/a", "    binary: bin/a\n    policy: {host_paths: [{path: /data, readonly: true}]}", 1), nil,
			[]string{"config key backends[0].policy.host_paths[0].readonly is not a known key"}},
		{"relative host path", strings.Replace(goodConfig, "    binary: bin/b", "    binary: bin/b\n    policy: {host_paths: [{path: data}]}", 1), nil,
			[]string{`config key backends[1].policy.host_paths[0].path: "data" must be an absolute path`}},
		{"host path with '..'", strings.Replace(goodConfig, "    binary: bin/a", "    binary: bin/a\n    policy: {host_paths: [{path: /data/../etc}]}", 1), nil,
			[]string{`config key backends[0].policy.host_paths[0].path: "/data/../etc" must not contain '..'`}},
		{"unknown capability", strings.Replace(goodConfig, "    binary: bin/a", "    binary: bin/a\n    policy: {capabilities: [NET_ADMIN, SYS_ADMN]}", 1), nil,
			[]string{`config key backends[0].policy.capabilities[1]: "SYS_ADMN" is neither a Linux capability`}},
		{"privileged not a bool", strings.Replace(goodConfig, "    binary: bin/a", "    binary: bin/a\n    policy: {privileged: sometimes}", 1), nil,
			[]string{"backends[0].policy.privileged"}},
		{"no listener", strings.Replace(strings.Replace(goodConfig, "  tcp: 127.0.0.1:4100\n", "  tcp: \"\"\n", 1), "  unix: /tmp/x.sock\n", "", 1), nil, []string{"listen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(LoadOptions{Path: writeConfig(t, tc.yaml), Environ: tc.env})
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := LoadConfig(LoadOptions{Path: "/nonexistent/config.yaml"}); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("missing config file: %v", err)
	}
}

// TestLoadConfigReportsEveryProblem: type errors, value errors and environment errors come together, one a
// line, and a value that could not be decoded is not reported a second time by its check.
func TestLoadConfigReportsEveryProblem(t *testing.T) {
	y := strings.Replace(goodConfig, "timeouts:\n  create: 20s", "timeouts:\n  create: 10 minutes\n  status: 5\n  list: -1s\n  craete: 1s", 1)
	y = strings.Replace(y, "data_dir: data", "data_dir: data\nlimits: {max_body_bytes: lots, max_connections_per_client: -1}\nlog: {level: loud}", 1)
	y = strings.Replace(y, "default: a", "default: z", 1)
	_, err := LoadConfig(LoadOptions{Path: writeConfig(t, y), Environ: []string{"INTERLINK_DISPATCHER_TIMEOUTS_PING=forever"}})
	if err == nil {
		t.Fatal("config accepted")
	}
	want := []string{
		`environment variable INTERLINK_DISPATCHER_TIMEOUTS_PING (config key timeouts.ping): "forever" is not a duration such as "30s"`,
		"config key limits.max_body_bytes: expected int64, got string",
		`config key timeouts.create: "10 minutes" is not a duration such as "10m"`,
		`config key timeouts.status: 5 is not a duration: write it with a unit`,
		"config key timeouts.craete is not a known key (check its spelling and indentation)",
		"config key timeouts.list: must be a positive duration",
		"config key limits.max_connections_per_client: must be a positive number",
		`config key log.level: "loud" is not one of`,
		`config key routing.default: "z" is not a configured backend`,
	}
	lines := strings.Split(err.Error(), "\n")
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("%d lines, want %d (each problem once):\n%v", len(lines), len(want), err)
	}
	if strings.Contains(err.Error(), "timeouts.create: must be") || strings.Contains(err.Error(), "max_body_bytes: must be") {
		t.Errorf("a value that did not decode is reported twice:\n%v", err)
	}
}

// The lab's config.yaml loads (with stand-ins for the binaries that make build would put in bin/), its access
// keys say what the defaults say, and its backends allow their pods nothing of the host: the lab's tests need
// no hostPath, privileged container, host network or added capability through it.
func TestShippedConfig(t *testing.T) {
	var env []string
	for _, b := range []string{"DOCKER", "PODMAN", "SLURM"} {
		env = append(env, "INTERLINK_DISPATCHER_BACKENDS_"+b+"_BINARY=/bin/true")
	}
	cfg, err := LoadConfig(LoadOptions{Path: filepath.Join("..", "config.yaml"), Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	if cfg.Listen.UnixMode != def.Listen.UnixMode || strings.Join(cfg.Access.AllowNetworks, ",") != strings.Join(def.Access.AllowNetworks, ",") ||
		strings.Join(cfg.Access.OpenPaths, ",") != strings.Join(def.Access.OpenPaths, ",") || cfg.Access.TokenFile != "" {
		t.Errorf("config.yaml's access keys differ from the defaults: %+v %+v", cfg.Listen, cfg.Access)
	}
	for i, b := range cfg.Backends {
		if p := b.Policy; len(p.HostPaths) > 0 || p.Privileged || p.HostNetwork || len(p.Capabilities) > 0 {
			t.Errorf("backends[%d] (%s) allows %+v", i, b.Name, p)
		}
	}
}
