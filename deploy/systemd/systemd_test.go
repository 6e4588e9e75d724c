// Package systemd holds the systemd units of the dispatcher (interlink-dispatcher.service and its drop-ins)
// and the tests that check them with systemd's own tools: `systemd-analyze verify` (the units load, every
// key is known and well formed, ExecStart names an executable) and `systemd-analyze security --offline`
// (which sandbox each variant really has once its drop-ins are applied). Neither needs systemd as PID 1: both
// read unit files under an alternative root. systemd-analyze comes with Debian's systemd package, which
// deploy/lab/lab.sh installs; under CI=true its absence fails the tests, elsewhere they skip. One test also
// runs the unit under a real systemd, PID 1 of a container of the lab's Docker Engine (TestUnitUnderSystemd).
package systemd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestUnitUnderSystemd runs the unit under a real systemd: PID 1 of a container of the lab's Docker Engine
// (systemd-image.sh), with the host's Docker socket mounted, this checkout's binaries at the ExecStart path,
// and the users of README.md. As the dedicated user with docker.conf, the dispatcher must come up ready with
// no capability, no new privileges, a system call filter and a read-only root, its socket reachable by a
// member of interlink and by no one else; stop must be clean. Then as root with root-mounts.conf it must come
// up outside any file-system sandbox (the root it sees writable).
func TestUnitUnderSystemd(t *testing.T) {
	labtest.RequireDocker(t)
	if _, err := exec.LookPath("debootstrap"); err != nil {
		if labtest.InCI() {
			t.Fatalf("debootstrap is required under CI=true (deploy/lab/lab.sh up installs it): %v", err)
		}
		t.Skipf("debootstrap is missing (%v): deploy/lab/lab.sh up installs it", err)
	}
	out, err := exec.Command("bash", "systemd-image.sh").Output()
	if err != nil {
		t.Fatalf("bash systemd-image.sh: %v", err)
	}
	image := strings.TrimSpace(string(out))
	dockerGroup, err := user.LookupGroup("docker")
	if err != nil {
		t.Fatalf("the lab's Docker socket has no docker group: %v", err)
	}

	name := fmt.Sprintf("interlink-dispatcher-systemd-test-%d", os.Getpid())
	docker := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("docker", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	in := func(script string) string {
		t.Helper()
		return docker("exec", name, "bash", "-c", script)
	}
	// systemd needs CAP_SYS_ADMIN for the units' namespaces; --privileged asks for capabilities this
	// sandbox's bounding set lacks, so only that one is added.
	docker("run", "-d", "--name", name, "--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined",
		"--security-opt", "apparmor=unconfined", "-e", "container=docker", "--tmpfs", "/run", "--tmpfs", "/run/lock",
		"-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro", "-v", labtest.DockerSocket+":/var/run/docker.sock",
		"--entrypoint", "/lib/systemd/systemd", image)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "exec", name, "journalctl", "--no-pager", "-n", "60", "-u", unitName).CombinedOutput()
			t.Logf("journal of %s:\n%s", unitName, out)
		}
		exec.Command("docker", "rm", "-f", name).Run()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		state, _ := exec.Command("docker", "exec", name, "systemctl", "is-system-running").Output()
		if s := strings.TrimSpace(string(state)); s == "running" || s == "degraded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd in the container did not finish booting: %s", state)
		}
		time.Sleep(time.Second)
	}

	exe := execStart(t)[0]
	in("mkdir -p " + filepath.Dir(exe) + " /etc/interlink-dispatcher /etc/systemd/system/" + unitName + ".d")
	for _, pkg := range []string{"./cmd/interlink-dispatcher", "./cmd/backend-docker"} {
		docker("cp", labtest.BuildBackend(t, pkg), name+":"+filepath.Join(filepath.Dir(exe), filepath.Base(pkg)))
	}
	docker("cp", labtest.BuildBinary(t, labtest.ShimPackage), name+":"+filepath.Join(filepath.Dir(exe), "interlink-shim"))
	docker("cp", labtest.BuildBinary(t, labtest.PausePackage), name+":"+filepath.Join(filepath.Dir(exe), "pause"))
	docker("cp", unitName, name+":/etc/systemd/system/"+unitName)
	docker("cp", filepath.Join(unitName+".d", "docker.conf"), name+":/etc/systemd/system/"+unitName+".d/docker.conf")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`instance: systemd-test-%d
data_dir: /var/lib/interlink-dispatcher
listen: {tcp: "", unix: /run/interlink-dispatcher/api.sock}
metrics: {listen: 127.0.0.1:9464}
routing: {default: docker}
backends:
  - {name: docker, binary: %s, config: {}}
`, os.Getpid(), filepath.Join(filepath.Dir(exe), "backend-docker"))), 0o644))
	docker("cp", cfg, name+":/etc/interlink-dispatcher/config.yaml")
	in("groupadd -g " + dockerGroup.Gid + " docker && groupadd --system interlink && " +
		"useradd --system --gid interlink --home-dir /var/lib/interlink-dispatcher --shell /usr/sbin/nologin interlink-dispatcher && " +
		"useradd -G interlink il && useradd other && chmod 0755 " + filepath.Dir(exe) + "/* && " +
		"chgrp interlink /etc/interlink-dispatcher/config.yaml && chmod 0640 /etc/interlink-dispatcher/config.yaml")

	start := func() string {
		t.Helper()
		in("systemctl daemon-reload && systemctl start " + unitName)
		deadline := time.Now().Add(60 * time.Second)
		for {
			out, _ := exec.Command("docker", "exec", name, "curl", "-s", "127.0.0.1:9464/readyz").Output()
			if strings.Contains(string(out), `"ready":true`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s under systemd is not ready within 60 s: %s", unitName, out)
			}
			time.Sleep(time.Second)
		}
		return in("systemctl show -p MainPID --value " + unitName)
	}
	status := func(pid string) map[string]string {
		t.Helper()
		m := map[string]string{}
		for _, line := range strings.Split(in("cat /proc/"+pid+"/status"), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				m[k] = strings.TrimSpace(v)
			}
		}
		return m
	}
	rootMount := func(pid string) string {
		t.Helper()
		return in(`awk '$5 == "/" { print $6; exit }' /proc/` + pid + `/mountinfo`)
	}

	pid := start()
	st := status(pid)
	uid := in("id -u interlink-dispatcher")
	if f := strings.Fields(st["Uid"]); len(f) == 0 || f[0] != uid {
		t.Errorf("the dispatcher runs as uid %q, want interlink-dispatcher's %s", st["Uid"], uid)
	}
	if !slices.Contains(strings.Fields(st["Groups"]), dockerGroup.Gid) {
		t.Errorf("supplementary groups %q lack docker's %s (docker.conf)", st["Groups"], dockerGroup.Gid)
	}
	if st["CapBnd"] != "0000000000000000" || st["NoNewPrivs"] != "1" || st["Seccomp"] != "2" {
		t.Errorf("CapBnd %s, NoNewPrivs %s, Seccomp %s: want no capability, no new privileges, a filter", st["CapBnd"], st["NoNewPrivs"], st["Seccomp"])
	}
	if opts := rootMount(pid); !strings.HasPrefix(opts, "ro") {
		t.Errorf("the dispatcher's / is mounted %q, want read-only (ProtectSystem=strict)", opts)
	}
	if got := in("stat -c '%a %G' /run/interlink-dispatcher /run/interlink-dispatcher/api.sock"); got != "750 interlink\n660 interlink" {
		t.Errorf("socket directory and socket: %q, want 750 and 660, group interlink", got)
	}
	ask := func(u string) string {
		out, _ := exec.Command("docker", "exec", name, "setpriv", "--reuid="+u, "--regid="+u, "--init-groups",
			"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", "/run/interlink-dispatcher/api.sock", "http://unix/readyz").Output()
		return string(out)
	}
	if got := ask("il"); got != "200" {
		t.Errorf("a member of interlink got %q on the socket, want 200", got)
	}
	if got := ask("other"); got == "200" {
		t.Error("a user outside interlink reached the socket")
	}
	in("systemctl stop " + unitName)
	if got, _ := exec.Command("docker", "exec", name, "systemctl", "is-active", unitName).Output(); strings.TrimSpace(string(got)) != "inactive" {
		t.Errorf("after stop the unit is %q, want inactive (not failed)", got)
	}
	if j := in("journalctl --no-pager -o cat -u " + unitName); !strings.Contains(j, `backend stopped`) {
		t.Errorf("the dispatcher did not stop its backends itself on SIGTERM:\n%s", j)
	}

	// root-mounts.conf: root, and no file-system sandbox, so the backend's mounts are the host's.
	in("rm /etc/systemd/system/" + unitName + ".d/docker.conf")
	docker("cp", filepath.Join(unitName+".d", "root-mounts.conf"), name+":/etc/systemd/system/"+unitName+".d/root-mounts.conf")
	pid = start()
	st = status(pid)
	if f := strings.Fields(st["Uid"]); len(f) == 0 || f[0] != "0" {
		t.Errorf("with root-mounts.conf the dispatcher runs as uid %q, want root", st["Uid"])
	}
	if opts := rootMount(pid); !strings.HasPrefix(opts, "rw") {
		t.Errorf("with root-mounts.conf the dispatcher's / is mounted %q: it is still in a file-system sandbox", opts)
	}
	if st["NoNewPrivs"] != "1" || st["Seccomp"] != "2" {
		t.Errorf("with root-mounts.conf NoNewPrivs %s, Seccomp %s: want both kept", st["NoNewPrivs"], st["Seccomp"])
	}
	in("systemctl stop " + unitName)
}
