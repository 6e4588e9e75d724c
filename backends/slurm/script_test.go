package slurm

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim/shimtest"
)

// offlineBackend is a backend whose scripts are generated and read, never submitted.
func offlineBackend(t *testing.T, cfg Config) *Backend {
	t.Helper()
	cfg.Root = t.TempDir()
	cfg.Shim = shimtest.Build(t)
	raw, _ := json.Marshal(cfg)
	b, err := newBackend(backend.Env{Name: "slurm", Config: raw, DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("newBackend: %v", err)
	}
	return b
}

// render prepares p's directory and returns its job script, checked by bash for syntax.
func render(t *testing.T, b *Backend, p *v1.Pod, objs conformance.Objects) string {
	t.Helper()
	dir := b.podDir(string(p.UID))
	if _, err := b.prepare(p, conformance.NewCreateRequest(p, objs), dir); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	script, err := os.ReadFile(filepath.Join(dir, scriptFile))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", filepath.Join(dir, scriptFile)).CombinedOutput(); err != nil {
		t.Fatalf("bash -n says the script is broken: %v\n%s\n%s", err, out, script)
	}
	return string(script)
}

func sbatchLines(script string) []string {
	var out []string
	for _, l := range strings.Split(script, "\n") {
		if strings.HasPrefix(l, "#SBATCH ") {
			out = append(out, strings.TrimPrefix(l, "#SBATCH "))
		}
	}
	return out
}

func limits(cpu, mem string) v1.ResourceRequirements {
	return v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem)}}
}

func flavorConfig() Config {
	uid := int64(4242)
	return Config{
		Runtime: RuntimePodman,
		Flags:   []string{"--partition=debug --account=site"},
		Flavors: map[string]Flavor{
			"big":   {CPUDefault: 4, MemoryDefault: "8G", SlurmFlags: []string{"--qos=high -t 60"}},
			"small": {CPUDefault: 1, MemoryDefault: "1G"},
			"gpu1":  {SlurmFlags: []string{"--gres=gpu:a100:1 --partition=gpu"}, UID: &uid},
			"gpu2":  {SlurmFlags: []string{"--gres=gpu:2", "--partition=gpu"}},
		},
		DefaultFlavor: "small",
	}
}

// TestScriptFlagsFlavorMPI reads the #SBATCH lines and commands of generated scripts: config flags < flavor
// < annotation < the pod's own resources, whatever the spelling; the mpi-flags prefix on every command.
func TestScriptFlagsFlavorMPI(t *testing.T) {
	b := offlineBackend(t, flavorConfig())
	a := conformance.ShellContainer("a", "true")
	a.Resources = limits("500m", "100Mi")
	c := conformance.ShellContainer("c", "true")
	c.Resources = limits("1500m", "300Mi")
	p := conformance.NewPod("flags", a, c)
	p.Annotations[AnnotationFlavor] = "big"
	p.Annotations[AnnotationFlags] = `-t 30 --comment='it'"'"'s "x"' -c 16 -p debug`
	p.Annotations[AnnotationMPIFlags] = "--bind-to core"
	script := render(t, b, p, conformance.Objects{})
	got := sbatchLines(script)
	dir := b.podDir(string(p.UID))
	want := []string{
		"--output=" + dir + "/job.out", "--chdir=" + dir,
		"--job-name=" + string(p.UID), "--partition=debug", "--account=site", "--cpus-per-task=2", "--mem=400M",
		"--qos=high", "--time=30", `'--comment=it'"'"'s "x"'`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("#SBATCH lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	runs := regexp.MustCompile(`(?m)^  mpiexec -np "\$\{SLURM_NTASKS:-1\}" --bind-to core podman run `).FindAllString(script, -1)
	if len(runs) != 2 {
		t.Errorf("want both containers' podman run prefixed by mpiexec with the pod's flags, found %d:\n%s", len(runs), script)
	}

	// Without pod resources the flavor's defaults size the job; without a flavor annotation the default
	// flavor applies.
	p2 := conformance.NewPod("defaults", conformance.ShellContainer("a", "true"))
	got = sbatchLines(render(t, b, p2, conformance.Objects{}))
	for _, w := range []string{"--cpus-per-task=1", "--mem=1024M", "--partition=debug"} {
		if !contains(got, w) {
			t.Errorf("default flavor: missing %s in %q", w, got)
		}
	}

	// A pod asking for GPUs gets the GPU flavor with that many GPUs, and its user.
	g := conformance.ShellContainer("g", "nvidia-smi")
	g.Resources.Limits = v1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
	p3 := conformance.NewPod("gpu", g)
	got = sbatchLines(render(t, b, p3, conformance.Objects{}))
	for _, w := range []string{"--gres=gpu:a100:1", "--partition=gpu", "--uid=4242"} {
		if !contains(got, w) {
			t.Errorf("GPU flavor: missing %s in %q", w, got)
		}
	}
	// The job runs as the flavor's user, so that user owns the pod's directory and its files.
	fi, err := os.Stat(filepath.Join(b.podDir(string(p3.UID)), scriptFile))
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 4242 {
		t.Errorf("the job script is not owned by the flavor's user 4242: %+v", fi.Sys())
	}

	// An unknown flavor and a reserved flag are refused with a sentence, not dropped.
	p4 := conformance.NewPod("unknown", conformance.ShellContainer("a", "true"))
	p4.Annotations[AnnotationFlavor] = "huge"
	if _, err := b.prepare(p4, conformance.NewCreateRequest(p4, conformance.Objects{}), b.podDir(string(p4.UID))); err == nil ||
		backend.KindOf(err) != backend.KindInvalid || !strings.Contains(err.Error(), "big, gpu1, gpu2, small") {
		t.Errorf("unknown flavor: err = %v, want an invalid error listing the flavors", err)
	}
	p5 := conformance.NewPod("reserved", conformance.ShellContainer("a", "true"))
	p5.Annotations[AnnotationFlags] = "--output=/etc/passwd"
	if _, err := b.prepare(p5, conformance.NewCreateRequest(p5, conformance.Objects{}), b.podDir(string(p5.UID))); err == nil ||
		backend.KindOf(err) != backend.KindInvalid {
		t.Errorf("reserved flag: err = %v, want invalid", err)
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// evil would break out of any unquoted shell text.
const evil = `a'b"c $(touch /tmp/slurm-backend-pwned) ` + "`id`" + ` \ ${HOME} ;|&`

// nastyPod has env values, args and objects that would break out of any unquoted shell text.
func nastyPod(runtime string) (*v1.Pod, conformance.Objects) {
	c := conformance.ShellContainer("main", "echo start")
	c.Args = []string{evil}
	c.Env = []v1.EnvVar{{Name: "EVIL", Value: evil}, {Name: "PEM", Value: "-----BEGIN-----\nline2\n-----END-----\n"}}
	c.Resources = limits("500m", "64Mi")
	c.WorkingDir = "/tmp"
	c = conformance.Mount(c, "cfg", "/etc/cfg", "", false)
	c = conformance.Mount(c, "sec", "/etc/sec", "", false)
	p := conformance.WithVolumes(conformance.NewPod("nasty", c),
		conformance.ConfigMapVolume("cfg", "cm", nil), conformance.SecretVolume("sec", "s", nil))
	p.Annotations[AnnotationRuntime] = runtime
	objs := conformance.Objects{
		ConfigMaps: []v1.ConfigMap{conformance.NewConfigMap(p.Namespace, "cm", map[string]string{"k": "v"})},
		Secrets:    []v1.Secret{conformance.NewSecret(p.Namespace, "s", map[string][]byte{"password": []byte("hunter2-secret")})},
	}
	return p, objs
}

func checkNoPodData(t *testing.T, script string) {
	t.Helper()
	for _, leak := range []string{"hunter2-secret", "line2"} {
		if strings.Contains(script, leak) {
			t.Errorf("the script holds the pod's value %q: secrets and env values belong in files", leak)
		}
	}
	// The args are in the shim's spec, never in the script.
	if n := strings.Count(script, "$(touch"); n != 0 {
		t.Errorf("the pod's args appear %d times in the script", n)
	}
}

func TestScriptApptainer(t *testing.T) {
	b := offlineBackend(t, Config{Runtime: RuntimeApptainer, Runtimes: []string{RuntimeEnroot}})
	p, objs := nastyPod(RuntimeApptainer)
	p.Annotations[AnnotationSingularityOptions] = "--cleanenv --hostname 'my host'"
	p.Annotations[AnnotationSingularityMounts] = "--bind /scratch:/scratch"
	run := conformance.ShellContainer("run", "")
	run.Command, run.Args = nil, []string{"arg1"}
	run.Image = "/images/tool.sif"
	p.Spec.Containers = append(p.Spec.Containers, run)
	script := render(t, b, p, objs)
	dir := b.podDir(string(p.UID))
	shimBin := b.cfg.Shim
	wantExec := "apptainer exec --nv --no-eval --containall --cleanenv --hostname 'my host' --bind " + dir +
		"/volumes/cfg:/etc/cfg:ro --bind " + dir + "/volumes/sec:/etc/sec:ro --bind " + shimBin + ":/.interlink/shim:ro --bind " +
		dir + "/shim/main:/.interlink/state --bind /scratch:/scratch --env-file " +
		dir + "/containers/main/env --cpus 0.5 --memory 67108864 --pwd /tmp docker://busybox:latest /.interlink/shim /.interlink/state/spec.json\n"
	if !strings.Contains(script, wantExec) {
		t.Errorf("script lacks the apptainer exec line\n%s\nscript:\n%s", wantExec, script)
	}
	wantRun := "apptainer exec --nv --no-eval --containall --cleanenv --hostname 'my host' --bind " + shimBin + ":/.interlink/shim:ro --bind " +
		dir + "/shim/run:/.interlink/state --bind /scratch:/scratch --env-file " +
		dir + "/containers/run/env /images/tool.sif /.interlink/shim /.interlink/state/spec.json\n"
	if !strings.Contains(script, wantRun) {
		t.Errorf("script lacks the apptainer line of the container without command (absolute image: no prefix)\n%s", wantRun)
	}
	checkArgv(t, dir, "main", "sh", "-c", "echo start", evil)
	// Without command, Apptainer's runscript (made from the image's ENTRYPOINT and CMD) runs, args replacing CMD.
	checkArgv(t, dir, "run", "/.singularity.d/runscript", "arg1")
	checkNoPodData(t, script)
	env, err := os.ReadFile(filepath.Join(dir, "containers/main/env"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", "-c", `set -a; . "$1"; set +a; printf '%s\0%s' "$EVIL" "$PEM"`, "bash", filepath.Join(dir, "containers/main/env")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := p.Spec.Containers[0].Env[0].Value + "\x00" + p.Spec.Containers[0].Env[1].Value; string(out) != want {
		t.Errorf("the env file reads back as %q, want %q (file:\n%s)", out, want, env)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "containers/main/env")); fi.Mode().Perm() != 0o600 {
		t.Errorf("env file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat("/tmp/slurm-backend-pwned"); err == nil {
		t.Errorf("reading the env file ran the command in a value")
	}

	// image-root replaces the prefix.
	p2 := conformance.NewPod("root", conformance.ShellContainer("main", "true"))
	p2.Annotations[AnnotationImageRoot] = "oras://registry.example/"
	if s := render(t, b, p2, conformance.Objects{}); !strings.Contains(s, " oras://registry.example/busybox:latest /.interlink/shim") {
		t.Errorf("image-root not applied:\n%s", s)
	}
}

func TestScriptEnroot(t *testing.T) {
	b := offlineBackend(t, Config{Runtime: RuntimeEnroot})
	c := conformance.ShellContainer("main", "echo hi")
	c.Env = []v1.EnvVar{{Name: "A", Value: "1 2"}}
	c = conformance.Mount(c, "cfg", "/etc/cfg", "", false)
	p := conformance.WithVolumes(conformance.NewPod("enroot", c), conformance.ConfigMapVolume("cfg", "cm", nil))
	p.Annotations[AnnotationEnrootOptions] = "--root"
	p.Annotations[AnnotationEnrootMounts] = "--mount /data:/data"
	objs := conformance.Objects{ConfigMaps: []v1.ConfigMap{conformance.NewConfigMap(p.Namespace, "cm", map[string]string{"k": "v"})}}
	script := render(t, b, p, objs)
	dir := b.podDir(string(p.UID))
	name := "il-" + string(p.UID) + "-main"
	for _, want := range []string{
		"enroot import --output " + dir + "/containers/main/image.sqsh docker://busybox:latest && enroot create --force --name " + name + " " + dir + "/containers/main/image.sqsh",
		"enroot start --rw --root --mount '" + dir + "/containers/main/enroot.env /etc/environment none x-create=file,bind,ro' --mount '" +
			dir + "/volumes/cfg /etc/cfg none x-create=auto,rbind,ro' --mount '" + b.cfg.Shim + " /.interlink/shim none x-create=file,bind,ro' --mount '" +
			dir + "/shim/main /.interlink/state none x-create=dir,bind' --mount /data:/data " + name + " /.interlink/shim /.interlink/state/spec.json",
		"enroot remove --force " + name,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks\n%s\nscript:\n%s", want, script)
		}
	}
	checkArgv(t, dir, "main", "sh", "-c", "echo hi")
	env, _ := os.ReadFile(filepath.Join(dir, "containers/main/enroot.env"))
	if string(env) != "A=1 2\n" {
		t.Errorf("enroot.env = %q", env)
	}
	// Enroot cannot replace only the arguments of an image.
	a := conformance.ShellContainer("main", "")
	a.Command, a.Args = nil, []string{"x"}
	p2 := conformance.NewPod("args", a)
	if _, err := b.prepare(p2, conformance.NewCreateRequest(p2, conformance.Objects{}), b.podDir(string(p2.UID))); err == nil || !strings.Contains(err.Error(), "Enroot") {
		t.Errorf("args without command: err = %v, want a refusal naming Enroot", err)
	}
}

func TestScriptPodmanAndNone(t *testing.T) {
	b := offlineBackend(t, Config{Runtime: RuntimePodman, Runtimes: []string{RuntimeNone}})
	p, objs := nastyPod(RuntimePodman)
	script := render(t, b, p, objs)
	dir := b.podDir(string(p.UID))
	if !strings.Contains(script, "--env-file "+dir+"/containers/main/podman.env") || !strings.Contains(script, "--env PEM") ||
		!strings.Contains(script, ". "+dir+"/containers/main/env-multi; set +a; exec podman run") {
		t.Errorf("podman script does not pass single-line values by env file and multi-line ones by name:\n%s", script)
	}
	if !strings.Contains(script, "--volume "+b.cfg.Shim+":/.interlink/shim:ro --volume "+dir+"/shim/main:/.interlink/state "+
		`--entrypoint '["/.interlink/shim","/.interlink/state/spec.json"]' busybox:latest )`) || !strings.Contains(script, "--cpus 0.5 --memory 67108864b") {
		t.Errorf("podman script lacks the shim's mounts and entrypoint or the limits:\n%s", script)
	}
	checkArgv(t, dir, "main", "sh", "-c", "echo start", evil)
	checkNoPodData(t, script)

	// Runtime none runs commands, so a container without one (it needs its image) is refused.
	n := conformance.ShellContainer("main", "")
	n.Command = nil
	p2 := conformance.NewPod("none", n)
	p2.Annotations[AnnotationRuntime] = RuntimeNone
	_, err := b.prepare(p2, conformance.NewCreateRequest(p2, conformance.Objects{}), b.podDir(string(p2.UID)))
	if err == nil || backend.KindOf(err) != backend.KindInvalid || !strings.Contains(err.Error(), "must set command") {
		t.Errorf("runtime none without command: err = %v, want invalid", err)
	}
	// A runtime the config does not enable is refused.
	p3 := conformance.NewPod("apptainer", conformance.ShellContainer("main", "true"))
	p3.Annotations[AnnotationRuntime] = "singularity"
	if _, err := b.prepare(p3, conformance.NewCreateRequest(p3, conformance.Objects{}), b.podDir(string(p3.UID))); err == nil ||
		!strings.Contains(err.Error(), "not enabled") {
		t.Errorf("disabled runtime: err = %v", err)
	}
}

// checkArgv checks the argv of a container's shim spec.
func checkArgv(t *testing.T, dir, ctr string, want ...string) {
	t.Helper()
	spec, err := shim.ReadSpec(filepath.Join(dir, "shim", ctr, shim.SpecFile))
	if err != nil {
		t.Fatalf("shim spec of %s: %v", ctr, err)
	}
	if !slices.Equal(spec.Argv, want) {
		t.Errorf("shim argv of %s = %q, want %q", ctr, spec.Argv, want)
	}
	if !spec.PreStopOnExit || spec.TerminationGracePeriodSeconds == nil {
		t.Errorf("shim spec of %s: PreStopOnExit %v, grace %v; want preStop after exit and a grace period", ctr, spec.PreStopOnExit, spec.TerminationGracePeriodSeconds)
	}
}

// TestScriptPodmanResolvesArgvInJob: with Podman and no command, the job writes the argv from the image's
// ENTRYPOINT and CMD (args replacing CMD), the way its write_argv step does after the pull.
func TestScriptPodmanResolvesArgvInJob(t *testing.T) {
	b := offlineBackend(t, Config{Runtime: RuntimePodman})
	noCmd := conformance.ShellContainer("nocmd", "")
	noCmd.Command, noCmd.Args = nil, nil
	argsOnly := conformance.ShellContainer("args", "")
	argsOnly.Command, argsOnly.Args = nil, []string{"-c", `echo "it's $HOME"`}
	argsOnly.ReadinessProbe = &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"true"}}}}
	p := conformance.NewPod("argv", noCmd, argsOnly)
	script := render(t, b, p, conformance.Objects{})
	dir := b.podDir(string(p.UID))
	for _, want := range []string{
		"podman image inspect --format '{{json .Config.Entrypoint}}' busybox:latest",
		"write_argv " + dir + "/shim/nocmd " + dir + "/containers/nocmd/spec.tail \"$ep\" \"$cmd\"",
		"write_argv " + dir + "/shim/args " + dir + "/containers/args/spec.tail \"$ep\" " + shellQuote(`["-c","echo \"it's $HOME\""]`),
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks\n%s\nscript:\n%s", want, script)
		}
	}
	for _, tc := range []struct {
		ctr, ep, rest string
		want          []string
	}{
		{"nocmd", "null", `["sh"]`, []string{"sh"}},
		{"nocmd", `["/docker-entrypoint.sh"]`, `["nginx","-g","daemon off;"]`, []string{"/docker-entrypoint.sh", "nginx", "-g", "daemon off;"}},
		{"args", `["python3"]`, `["-c","echo \"it's $HOME\""]`, []string{"python3", "-c", `echo "it's $HOME"`}},
		{"args", "[]", `["-c","x"]`, []string{"-c", "x"}},
	} {
		helpers := jobScriptHelpers + "\nwrite_argv \"$@\"\n"
		out, err := exec.Command("bash", "-c", helpers, "bash", filepath.Join(dir, "shim", tc.ctr),
			filepath.Join(dir, "containers", tc.ctr, "spec.tail"), tc.ep, tc.rest).CombinedOutput()
		if err != nil {
			t.Fatalf("write_argv: %v\n%s", err, out)
		}
		spec, err := shim.ReadSpec(filepath.Join(dir, "shim", tc.ctr, shim.SpecFile))
		if err != nil {
			t.Fatalf("the spec write_argv wrote does not read back: %v", err)
		}
		if !slices.Equal(spec.Argv, tc.want) {
			t.Errorf("write_argv %s %s: argv %q, want %q", tc.ep, tc.rest, spec.Argv, tc.want)
		}
		if tc.ctr == "args" && spec.ReadinessProbe == nil {
			t.Errorf("write_argv lost the rest of the spec: %+v", spec)
		}
	}
}

// TestCreateRefusesWhatTheShimCannotRun: a container the shim could not carry out (a tcpSocket hook, which
// Kubernetes no longer runs) is refused at Create as invalid, naming the container, before any job exists.
func TestCreateRefusesWhatTheShimCannotRun(t *testing.T) {
	b := offlineBackend(t, Config{Runtime: RuntimePodman})
	c := conformance.ShellContainer("hooked", "true")
	c.Lifecycle = &v1.Lifecycle{PostStart: &v1.LifecycleHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt32(80)}}}
	p := conformance.NewPod("hooked", c)
	_, err := b.prepare(p, conformance.NewCreateRequest(p, conformance.Objects{}), b.podDir(string(p.UID)))
	if err == nil || backend.KindOf(err) != backend.KindInvalid || !strings.Contains(err.Error(), `"hooked"`) {
		t.Errorf("tcpSocket hook: err = %v, want invalid naming the container", err)
	}
	t.Logf("refused: %v", err)
}

// TestScriptPinsSubPaths: the runtime binds the pinned target of a subPath, never a path into the volume,
// and the job's pin function runs the shim's pin on it before each start; the shim refuses a subPath swapped
// for a link out of its volume with the message the container's status shows.
func TestScriptPinsSubPaths(t *testing.T) {
	b := offlineBackend(t, Config{Runtime: RuntimePodman})
	p := conformance.SubPathSwapPod("pins", t.TempDir(), conformance.LinkToRootAbsolute, false)
	script := render(t, b, p, conformance.Objects{})
	dir := b.podDir(string(p.UID))
	vol, target := filepath.Join(dir, "volumes", "e"), filepath.Join(dir, "subpaths", "main", "1")
	pin := shellJoin([]string{b.cfg.Shim, "pin", "main", "e", vol, "sp", target, "777"})
	if !strings.Contains(script, "c0_pin() {\n  "+pin+"\n}") {
		t.Errorf("the script does not pin main's subPath with %q:\n%s", pin, script)
	}
	if !strings.Contains(script, "--volume "+target+":/sp ") || strings.Contains(script, vol+"/sp:") {
		t.Errorf("podman does not bind the pinned target of the subPath:\n%s", script)
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Errorf("the pinned target should exist, empty, from Create on: %v", err)
	}
	if err := os.Symlink("/", filepath.Join(vol, "sp")); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", "-c", pin).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 ||
		strings.TrimSpace(string(out)) != `container "main", volume "e": subPath "sp" is refused: it leads outside the volume (through '..' or a symbolic link)` {
		t.Errorf("shim pin of a subPath linked to /: %v, output %q", err, out)
	}
	if _, err := os.Stat(filepath.Join(target, "etc")); err == nil {
		t.Errorf("the refused pin put the host's root on %s", target)
	}
}
