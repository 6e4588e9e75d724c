// Package systemd holds the systemd units of the dispatcher (interlink-dispatcher.service and its drop-ins)
// and the tests that check them with systemd's own tools: `systemd-analyze verify` (the units load, every
// key is known and well formed, ExecStart names an executable) and `systemd-analyze security --offline`
// (which sandbox each variant really has once its drop-ins are applied). Neither needs systemd as PID 1: both
// read unit files under an alternative root. systemd-analyze comes with Debian's systemd package, which
// deploy/lab/lab.sh installs; under CI=true its absence fails the tests, elsewhere they skip.
package systemd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/backends/docker"
	"github.com/interlink-hq/interlink-dispatcher/backends/podman"
	"github.com/interlink-hq/interlink-dispatcher/backends/slurm"
	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"sigs.k8s.io/yaml"
)

const unitName = "interlink-dispatcher.service"

// A variant is the unit with the drop-ins a site installs for one set-up (README.md).
type variant struct {
	name    string
	dropins []string // files of interlink-dispatcher.service.d/, applied in this order (systemd's: by name)
	root    bool     // runs as root
	mountNS bool     // runs in a mount namespace of its own (the file-system sandbox)
}

var variants = []variant{
	{name: "base", mountNS: true},
	{name: "docker", dropins: []string{"docker.conf"}, mountNS: true},
	{name: "podman", dropins: []string{"podman.conf"}, mountNS: true},
	{name: "slurm", dropins: []string{"slurm-login-node.conf"}, mountNS: true},
	{name: "slurm-root", dropins: []string{"slurm-login-node.conf", "slurm-root.conf"}, root: true, mountNS: true},
	{name: "root-mounts", dropins: []string{"root-mounts.conf"}, root: true},
}

// systemdAnalyze is the path of systemd-analyze; without it the test fails under CI=true and skips elsewhere.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err == nil {
		return path
	}
	if labtest.InCI() {
		t.Fatalf("systemd-analyze is required under CI=true and is not on PATH (%v): deploy/lab/lab.sh up installs Debian's systemd package", err)
	}
	t.Skipf("systemd-analyze is not on PATH (%v); install Debian's systemd package (deploy/lab/lab.sh up does) to check the units", err)
	return ""
}

// unitDirs are where this host's systemd keeps its own units (sysinit.target and the rest every service
// depends on by default); the first that exists is copied into each test root.
var unitDirs = []string{"/usr/lib/systemd/system", "/lib/systemd/system"}

// installRoot lays out a root as a site installs the variant: the unit and its drop-ins under
// /etc/systemd/system, the dispatcher built by this checkout at the unit's ExecStart path, the host's own
// units under /usr/lib/systemd/system. systemd-analyze --root= reads everything from it.
func installRoot(t *testing.T, v variant) string {
	t.Helper()
	root := t.TempDir()
	var hostUnits string
	for _, d := range unitDirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			hostUnits = d
			break
		}
	}
	if hostUnits == "" {
		t.Fatalf("none of %s exists: this host's systemd package is incomplete", strings.Join(unitDirs, ", "))
	}
	dst := filepath.Join(root, "usr/lib/systemd")
	must(t, os.MkdirAll(dst, 0o755))
	if out, err := exec.Command("cp", "-a", hostUnits, dst).CombinedOutput(); err != nil {
		t.Fatalf("cannot copy %s: %v\n%s", hostUnits, err, out)
	}
	etc := filepath.Join(root, "etc/systemd/system")
	copyFile(t, unitName, filepath.Join(etc, unitName), 0o644)
	for _, d := range v.dropins {
		copyFile(t, filepath.Join(unitName+".d", d), filepath.Join(etc, unitName+".d", d), 0o644)
	}
	exe := execStart(t)[0]
	copyFile(t, labtest.BuildBinary(t, "./cmd/interlink-dispatcher"), filepath.Join(root, exe), 0o755)
	return root
}

// TestUnitsVerify runs `systemd-analyze verify` on every variant. It exits 0 on a unit with an unknown key or
// a value it cannot parse (it only warns, and ignores the line), so any output at all fails the test.
func TestUnitsVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			root := installRoot(t, v)
			out, err := exec.Command(analyze, "verify", "--man=no", "--root="+root, unitName).CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Fatalf("systemd-analyze verify %s with %v: %v\n%s", unitName, v.dropins, err, out)
			}
		})
	}
}

// TestPodmanSocketDropIn verifies podman.socket with the drop-in that gives its socket the group podman.
func TestPodmanSocketDropIn(t *testing.T) {
	analyze := systemdAnalyze(t)
	root := installRoot(t, variants[0])
	if _, err := os.Stat(filepath.Join(root, "usr/lib/systemd/system/podman.socket")); err != nil {
		if labtest.InCI() {
			t.Fatalf("podman.socket is not installed (%v): deploy/lab/lab.sh up installs Debian's podman package", err)
		}
		t.Skipf("podman.socket is not installed (%v): Debian's podman package ships it", err)
	}
	copyFile(t, "podman.socket.d/interlink-dispatcher.conf",
		filepath.Join(root, "etc/systemd/system/podman.socket.d/interlink-dispatcher.conf"), 0o644)
	out, err := exec.Command(analyze, "verify", "--man=no", "--root="+root, "podman.socket").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify podman.socket: %v\n%s", err, out)
	}
}

// A finding is one line of `systemd-analyze security --json`: Set means the setting protects.
type finding struct {
	Name string `json:"name"`
	Set  bool   `json:"set"`
}

// mountNamespaceSettings are those of systemd-analyze security's findings that run the service in a mount
// namespace of its own, which cuts mount propagation from the service to the host (systemd.exec(5)).
var mountNamespaceSettings = []string{"ProtectSystem=", "ProtectHome=", "PrivateTmp=", "PrivateDevices=",
	"ProtectKernelTunables=", "ProtectKernelModules=", "ProtectKernelLogs=", "ProtectControlGroups=",
	"ProtectProc=", "PrivateMounts="}

// mountNamespacePaths are the path-list settings that do the same, which systemd-analyze security does not
// report; they are read from the unit files (a later empty assignment resets the list).
var mountNamespacePaths = []string{"ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "ExecPaths",
	"NoExecPaths", "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths", "RootDirectory", "RootImage",
	"MountImages", "ExtensionImages", "ExtensionDirectories"}

// TestUnitsSandbox checks, with systemd's own reading of each variant, the sandbox README.md promises: the
// file-system sandbox everywhere except root-mounts.conf, which must leave no setting on that would keep the
// Docker and Podman backends' subPath bind mounts from the engine; root only where a drop-in says so; no
// capabilities for the dedicated user; and an overall exposure systemd calls OK.
func TestUnitsSandbox(t *testing.T) {
	analyze := systemdAnalyze(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			root := installRoot(t, v)
			out, err := exec.Command(analyze, "security", "--offline=true", "--root="+root, "--json=short", unitName).Output()
			if err != nil {
				t.Fatalf("systemd-analyze security --json: %v\n%s", err, out)
			}
			var findings []finding
			if err := json.Unmarshal(out, &findings); err != nil {
				t.Fatalf("systemd-analyze security --json printed what is not its JSON: %v\n%s", err, out)
			}
			set := map[string]bool{}
			for _, f := range findings {
				set[f.Name] = f.Set
			}
			check := func(name string, want bool) {
				t.Helper()
				got, ok := set[name]
				if !ok {
					t.Errorf("systemd-analyze security reports no %s; its findings: %s", name, out)
				} else if got != want {
					t.Errorf("%s: protects %v, want %v", name, got, want)
				}
			}
			for _, name := range mountNamespaceSettings {
				if name == "PrivateMounts=" {
					// Reported for the explicit setting only, which no variant uses; the others imply it.
					check(name, false)
					continue
				}
				check(name, v.mountNS)
			}
			paths := effectivePaths(t, v)
			for _, key := range mountNamespacePaths {
				if got := paths[key]; !v.mountNS && len(got) > 0 {
					t.Errorf("%s=%s gives the service a mount namespace, so its mounts would not reach the engine", key, strings.Join(got, " "))
				}
			}
			check("User=/DynamicUser=", !v.root)
			check("NoNewPrivileges=", true)
			check("SystemCallArchitectures=", true)
			check("RestrictNamespaces=~mnt", true)
			check("MemoryDenyWriteExecute=", true)
			// The dedicated user has no capability at all; root only those its drop-in names.
			check("CapabilityBoundingSet=~CAP_SYS_ADMIN", v.name != "root-mounts")
			check("CapabilityBoundingSet=~CAP_SYS_MODULE", true)
			check("CapabilityBoundingSet=~CAP_NET_ADMIN", true)
			check("CapabilityBoundingSet=~CAP_(CHOWN|FSETID|SETFCAP)", v.name != "slurm-root") // its chown of pod directories
			check("SystemCallFilter=~@mount", v.name != "root-mounts")

			text, err := exec.Command(analyze, "security", "--offline=true", "--root="+root, unitName).Output()
			if err != nil {
				t.Fatalf("systemd-analyze security: %v\n%s", err, text)
			}
			m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`).FindSubmatch(text)
			if m == nil {
				t.Fatalf("systemd-analyze security printed no overall exposure:\n%s", text)
			}
			exposure, _ := strconv.ParseFloat(string(m[1]), 64)
			// systemd's scale: up to 1.9 OK for a non-root sandboxed service here; root-mounts gives up the
			// file-system sandbox and stays under 5 (MEDIUM starts at 5).
			limit := 2.0
			if v.root {
				limit = 4.9
			}
			if exposure > limit {
				t.Errorf("overall exposure %.1f %s, want at most %.1f:\n%s", exposure, m[2], limit, text)
			}
			t.Logf("%s: exposure %.1f %s", v.name, exposure, m[2])
		})
	}
}

// TestConfigMatchesUnit loads config.yaml as the dispatcher does and checks it against the unit: the data
// directory is the StateDirectory, the socket is in the RuntimeDirectory, its group is the unit's, the
// config is where ExecStart reads it, every backend's binary sits beside the dispatcher's (one copy of
// bin/ installs them all), and each backend's own section has only keys that backend knows.
func TestConfigMatchesUnit(t *testing.T) {
	unit := readUnit(t, unitName)
	exe := execStart(t)
	if i := slices.Index(exe, "--config"); i < 0 || i+1 >= len(exe) {
		t.Fatalf("ExecStart %q passes no --config", exe)
	} else if want := filepath.Join("/etc", unit["ConfigurationDirectory"][0], "config.yaml"); exe[i+1] != want {
		t.Errorf("ExecStart reads %s, want %s (the ConfigurationDirectory's config.yaml)", exe[i+1], want)
	}

	// The binaries named in the file are where a site installs them; here the checkout's builds stand in.
	cfgFile := readConfigFile(t)
	var env []string
	for _, b := range cfgFile.Backends {
		if filepath.Dir(b.Binary) != filepath.Dir(exe[0]) {
			t.Errorf("backend %s: binary %s is not beside the dispatcher's %s", b.Name, b.Binary, exe[0])
		}
		pkg := "./cmd/" + filepath.Base(b.Binary)
		if _, err := os.Stat(filepath.Join(labtest.RepoRoot(), pkg)); err != nil {
			t.Errorf("backend %s: binary %s is not one that make build makes (no %s)", b.Name, b.Binary, pkg)
			continue
		}
		env = append(env, "INTERLINK_DISPATCHER_BACKENDS_"+strings.ToUpper(b.Name)+"_BINARY="+labtest.BuildBinary(t, pkg))
	}
	cfg, err := dispatcher.LoadConfig(dispatcher.LoadOptions{Path: "config.yaml", Environ: env})
	if err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	if want := filepath.Join("/var/lib", unit["StateDirectory"][0]); cfg.DataDir != want {
		t.Errorf("data_dir %s, want the unit's StateDirectory %s", cfg.DataDir, want)
	}
	if want := filepath.Join("/run", unit["RuntimeDirectory"][0]); filepath.Dir(cfg.Listen.Unix) != want {
		t.Errorf("listen.unix %q is not in the unit's RuntimeDirectory %s", cfg.Listen.Unix, want)
	}
	if cfg.Listen.TCP != "" {
		t.Errorf("listen.tcp %q: the example serves interLink on the socket only", cfg.Listen.TCP)
	}
	if cfgFile.Listen.UnixGroup != "" {
		t.Errorf("listen.unix_group %q: the example leaves it to the unit's Group=%s", cfgFile.Listen.UnixGroup, unit["Group"][0])
	}
	if got := unit["RuntimeDirectoryMode"]; len(got) != 1 || got[0] != "0750" {
		t.Errorf("RuntimeDirectoryMode %v, want 0750: interLink's group must reach the socket, others must not", got)
	}

	login := readUnit(t, filepath.Join(unitName+".d", "slurm-login-node.conf"))
	for _, b := range cfg.Backends {
		raw, err := json.Marshal(b.Config)
		if err != nil {
			t.Fatal(err)
		}
		var known any
		switch b.Name {
		case "docker":
			known = &docker.Config{}
		case "podman":
			known = &podman.Config{}
		case "slurm":
			known = &slurm.Config{}
		default:
			t.Errorf("backend %s: no such backend in this repository", b.Name)
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(known); err != nil {
			t.Errorf("backend %s: config %s: %v", b.Name, raw, err)
		}
		if s, ok := known.(*slurm.Config); ok {
			if !under(s.Root, login["ReadWritePaths"]) {
				t.Errorf("slurm root %s is not under slurm-login-node.conf's ReadWritePaths %v", s.Root, login["ReadWritePaths"])
			}
			if !under(s.Shim, login["RequiresMountsFor"]) || !under(s.Root, login["RequiresMountsFor"]) {
				t.Errorf("slurm shim %s and root %s are not on slurm-login-node.conf's RequiresMountsFor %v", s.Shim, s.Root, login["RequiresMountsFor"])
			}
		}
	}
}

// fileConfig is what config.yaml itself says of the keys the test compares, before defaults and overrides.
type fileConfig struct {
	Listen struct {
		UnixGroup string `json:"unix_group"`
	} `json:"listen"`
	Backends []struct {
		Name   string `json:"name"`
		Binary string `json:"binary"`
	} `json:"backends"`
}

func readConfigFile(t *testing.T) fileConfig {
	t.Helper()
	raw, err := os.ReadFile("config.yaml")
	must(t, err)
	var c fileConfig
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	return c
}

// under tells whether path is one of dirs or beneath one of them.
func under(path string, dirs []string) bool {
	for _, d := range dirs {
		if rel, err := filepath.Rel(d, path); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}

// execStart is the unit's ExecStart as words.
func execStart(t *testing.T) []string {
	t.Helper()
	v := readUnit(t, unitName)["ExecStart"]
	if len(v) != 1 {
		t.Fatalf("%s has %d ExecStart lines, want 1", unitName, len(v))
	}
	return strings.Fields(v[0])
}

// readUnit reads a unit file or drop-in of this directory into its keys' values in order, whatever section
// they are in (no key of these files is in two sections). An empty assignment resets the key, as systemd
// reads list settings.
func readUnit(t *testing.T, name string) map[string][]string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not key=value", name, line)
		}
		if v == "" {
			keys[k] = nil
			continue
		}
		keys[k] = append(keys[k], v)
	}
	must(t, s.Err())
	return keys
}

// effectivePaths folds the path-list settings of the unit and the variant's drop-ins in systemd's order.
func effectivePaths(t *testing.T, v variant) map[string][]string {
	t.Helper()
	files := []string{unitName}
	for _, d := range v.dropins {
		files = append(files, filepath.Join(unitName+".d", d))
	}
	out := map[string][]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		must(t, err)
		for _, line := range strings.Split(string(raw), "\n") {
			k, val, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok || !slices.Contains(mountNamespacePaths, k) {
				continue
			}
			if val == "" {
				out[k] = nil
			} else {
				out[k] = append(out[k], strings.Fields(val)...)
			}
		}
	}
	return out
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	must(t, err)
	must(t, os.MkdirAll(filepath.Dir(to), 0o755))
	must(t, os.WriteFile(to, data, mode))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
