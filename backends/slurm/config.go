package slurm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	cfgsettings "github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

// Config is the SLURM backend's section of the dispatcher config (JSON of the YAML section). Every key is
// optional; Defaults lists the values used for the missing ones.
type Config struct {
	// Root holds one working directory per pod (job script, env files, volumes, logs, exit codes). It must be
	// on a filesystem the compute nodes share. Default: <backend data dir>/pods.
	Root string `json:"root"`
	// Sbatch, Squeue, Scancel and Sinfo are the command lines of the SLURM commands; each may carry a prefix
	// ("sudo -u alice sbatch", "ssh login01 squeue"). They are split shell-wise and run without a shell.
	Sbatch  string `json:"sbatch"`
	Squeue  string `json:"squeue"`
	Scancel string `json:"scancel"`
	Sinfo   string `json:"sinfo"`
	// CommandPrefix is put before each of the four command lines ("ssh login01").
	CommandPrefix string `json:"command_prefix" was:"commandPrefix"`
	// Bash is the interpreter of the job script.
	Bash string `json:"bash"`
	// Runtime is the container runtime used inside jobs: apptainer (or singularity), enroot, podman, or none
	// (the command runs on the node, for sites without containers).
	Runtime string `json:"runtime"`
	// Runtimes are the runtimes a pod may choose with the slurm-job.vk.io/runtime annotation; Runtime is always
	// allowed.
	Runtimes  []string      `json:"runtimes"`
	Apptainer RuntimeConfig `json:"apptainer"`
	Enroot    RuntimeConfig `json:"enroot"`
	Podman    RuntimeConfig `json:"podman"`
	// Flags are sbatch options for every job (the lowest priority: flavors and pods override them).
	Flags []string `json:"flags"`
	// Flavors are named presets a pod selects with slurm-job.vk.io/flavor, or by asking for GPUs, or by default.
	Flavors       map[string]Flavor `json:"flavors"`
	DefaultFlavor string            `json:"default_flavor" was:"defaultFlavor"`
	// DefaultUID submits jobs as this user (sbatch --uid) unless a flavor or the pod says otherwise.
	DefaultUID *int64 `json:"default_uid" was:"defaultUID"`
	// DefaultCPUs and DefaultMemory size a job whose pod and flavor say nothing; without them SLURM's own
	// defaults apply (which may be the whole node's memory).
	DefaultCPUs   int64  `json:"default_cpus" was:"defaultCPUs"`
	DefaultMemory string `json:"default_memory" was:"defaultMemory"`
	// Partitions restrict the capacity reported for the ping to these partitions' nodes (default: all nodes).
	Partitions []string `json:"partitions"`
	// Pods is the number of pods reported in the capacity; 0 leaves it out.
	Pods int64 `json:"pods"`
	// ResourceCommand, when set, is run instead of sinfo for the capacity; it prints a JSON object like the
	// ping's resources: {"cpu": "64", "memory": "256Gi", "pods": "100", "accelerators": [...]}.
	ResourceCommand string `json:"resource_command" was:"resourceCommand"`
	// Taints are reported with the capacity.
	Taints []v1.Taint `json:"taints"`
	// RestartBackoff is the first wait before a container is restarted inside its job; it doubles up to
	// MaxRestartBackoff.
	RestartBackoff    Duration `json:"restart_backoff" was:"restartBackoff"`
	MaxRestartBackoff Duration `json:"restart_backoff_max" was:"maxRestartBackoff"`
	// PullRetries is how many times a job tries to pull an image before it reports ErrImagePull for good.
	PullRetries int `json:"pull_retries" was:"pullRetries"`
	// KillWait is the cluster's KillWait (slurm.conf): how long SLURM waits between SIGTERM and SIGKILL when it
	// stops a job itself (time limit, preemption). A container's graceful stop inside the job is bounded by it.
	KillWait Duration `json:"kill_wait" was:"killWait"`
	// CommandTimeout bounds each SLURM command.
	CommandTimeout Duration `json:"command_timeout" was:"commandTimeout"`
	// SqueueMaxAge is how long one squeue run answers every status, delete and log follow that comes after
	// it (callers meanwhile wait for the run in flight); "0s" shares only the run in flight. Default 2s.
	SqueueMaxAge *Duration `json:"squeue_max_age"`
	// FollowInterval is how often a followed log is polled for new lines.
	FollowInterval Duration `json:"follow_interval" was:"followInterval"`
	// Shim is the interlink-shim binary that runs every container (probes, lifecycle hooks), on a filesystem
	// the compute nodes share. Default: interlink-shim next to the backend's own executable.
	Shim string `json:"shim"`
}

// RuntimeConfig configures one container runtime.
type RuntimeConfig struct {
	Path string `json:"path"`
	// Options are put on every run (Apptainer default: --nv --no-eval --containall; Enroot: --rw).
	Options []string `json:"options"`
	// ImagePrefix is put before image references that carry no scheme and are not absolute paths
	// (Apptainer and Enroot default: docker://; Podman: none). slurm-job.vk.io/image-root overrides it.
	ImagePrefix *string `json:"image_prefix" was:"imagePrefix"`
}

// Flavor is a named preset of job resources and sbatch options.
type Flavor struct {
	Description string `json:"description"`
	// CPUDefault and MemoryDefault size the job when the pod sets no CPU or memory of its own.
	CPUDefault    int64  `json:"cpu_default" was:"cpuDefault"`
	MemoryDefault string `json:"memory_default" was:"memoryDefault"` // "16G", "32000M", "8Gi"
	// UID submits the flavor's jobs as this user.
	UID *int64 `json:"uid"`
	// SlurmFlags are sbatch options (each element may hold several, shell-quoted).
	SlurmFlags []string `json:"slurm_flags" was:"slurmFlags"`

	flags       []sbatchFlag
	memoryBytes int64
}

// Duration is the config's duration type: a string such as "10s" or "5m".
type Duration = cfgsettings.Duration

// Runtime names.
const (
	RuntimeApptainer = "apptainer"
	RuntimeEnroot    = "enroot"
	RuntimePodman    = "podman"
	RuntimeNone      = "none"
)

// settings is the checked config, ready for use.
type settings struct {
	Config
	sbatch, squeue, scancel, sinfo commandLine
	resourceCommand                commandLine
	runtimes                       map[string]bool
	flags                          []sbatchFlag
	defaultMemoryBytes             int64
	prefix                         string               // the section's key path
	problems                       cfgsettings.Problems // what check found wrong
}

// parseConfig reads the section of backend name and checks it. Every problem is reported at once, as
// settings.Problems naming each key path; warnings name the new spelling of each old key used.
func parseConfig(name string, raw json.RawMessage, dataDir string) (*settings, []string, error) {
	var c Config
	prefix := cfgsettings.Prefix(name)
	warnings, err := cfgsettings.Decode(raw, prefix, &c)
	var ps cfgsettings.Problems
	if err != nil && !errors.As(err, &ps) {
		return nil, warnings, err
	}
	s, err := c.check(prefix, dataDir, ps)
	return s, warnings, err
}

// check checks c and fills in its defaults; problems already found (by the decoding) come first.
func (c Config) check(prefix, dataDir string, found cfgsettings.Problems) (*settings, error) {
	s := &settings{Config: c, prefix: prefix, problems: found}
	s.checkPaths(dataDir)
	s.checkCommands()
	s.checkRuntimes()
	s.checkFlavors()
	s.checkDefaults()
	s.applyTimingDefaults()
	if s.MaxRestartBackoff < s.RestartBackoff {
		s.bad("restart_backoff_max", "%s must not be shorter than restart_backoff (%s)", s.MaxRestartBackoff, s.RestartBackoff)
	}
	if *s.SqueueMaxAge < 0 {
		s.bad("squeue_max_age", "%s is negative; it must be 0s or a positive duration such as \"2s\"", *s.SqueueMaxAge)
	}
	if err := s.problems.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// bad records a problem with key (relative to the section).
func (s *settings) bad(key, format string, args ...any) {
	s.problems.Add(s.prefix, key, format, args...)
}

// checkPaths resolves the pod directory root and the shim to absolute paths.
func (s *settings) checkPaths(dataDir string) {
	if s.Root == "" {
		if dataDir == "" {
			s.bad("root", "no pod directory root is configured and the backend has no data directory")
			return
		}
		s.Root = filepath.Join(dataDir, "pods")
	}
	if !filepath.IsAbs(s.Root) {
		abs, err := filepath.Abs(s.Root)
		if err != nil {
			s.bad("root", "%v", err)
		}
		s.Root = abs
	}
	if s.Shim == "" {
		exe, err := os.Executable()
		if err != nil {
			s.bad("shim", "the backend cannot find its own executable to look for interlink-shim beside it (%v); set the key shim", err)
			return
		}
		s.Shim = filepath.Join(filepath.Dir(exe), "interlink-shim")
	}
	if !filepath.IsAbs(s.Shim) {
		abs, err := filepath.Abs(s.Shim)
		if err != nil {
			s.bad("shim", "%v", err)
		}
		s.Shim = abs
	}
}

// checkCommands parses the SLURM command lines (with the command prefix) and the resource command.
func (s *settings) checkCommands() {
	parse := func(key, line string, dst *commandLine) {
		var err error
		if *dst, err = parseCommandLine(key, line); err != nil {
			s.bad(key, "%s", strings.TrimPrefix(err.Error(), key+": "))
		}
	}
	for _, cmd := range []struct {
		key, def string
		val      string
		dst      *commandLine
	}{
		{"sbatch", "sbatch", s.Sbatch, &s.sbatch},
		{"squeue", "squeue", s.Squeue, &s.squeue},
		{"scancel", "scancel", s.Scancel, &s.scancel},
		{"sinfo", "sinfo", s.Sinfo, &s.sinfo},
	} {
		line := cmd.val
		if line == "" {
			line = cmd.def
		}
		if s.CommandPrefix != "" {
			line = s.CommandPrefix + " " + line
		}
		parse(cmd.key, line, cmd.dst)
	}
	if s.ResourceCommand != "" {
		parse("resource_command", s.ResourceCommand, &s.resourceCommand)
	}
}

// checkRuntimes checks bash, the default runtime and the allowed runtimes, and fills in each runtime's
// defaults.
func (s *settings) checkRuntimes() {
	if s.Bash == "" {
		s.Bash = "/bin/bash"
	}
	if strings.ContainsAny(s.Bash, " \n") || !filepath.IsAbs(s.Bash) {
		s.bad("bash", "%q must be an absolute path without spaces", s.Bash)
	}
	if s.Runtime == "" {
		s.Runtime = RuntimeApptainer
	}
	s.Runtime = canonicalRuntime(s.Runtime)
	s.runtimes = map[string]bool{}
	for i, r := range append([]string{s.Runtime}, s.Runtimes...) {
		r = canonicalRuntime(r)
		if !knownRuntime(r) {
			key := "runtime"
			if i > 0 {
				key = fmt.Sprintf("runtimes[%d]", i-1)
			}
			s.bad(key, "%q is not a runtime; use apptainer, singularity, enroot, podman or none", r)
			continue
		}
		s.runtimes[r] = true
	}
	defaults := []struct {
		rc         *RuntimeConfig
		path, pref string
		opts       []string
	}{
		{&s.Apptainer, "apptainer", "docker://", []string{"--nv", "--no-eval", "--containall"}},
		{&s.Enroot, "enroot", "docker://", []string{"--rw"}},
		{&s.Podman, "podman", "", nil},
	}
	for _, d := range defaults {
		if d.rc.Path == "" {
			d.rc.Path = d.path
		}
		if d.rc.Options == nil {
			d.rc.Options = d.opts
		}
		if d.rc.ImagePrefix == nil {
			p := d.pref
			d.rc.ImagePrefix = &p
		}
	}
}

// checkFlavors parses the backend-wide sbatch flags and each flavor, and checks the default flavor names
// one of them.
func (s *settings) checkFlavors() {
	for i, f := range s.Flags {
		fl, err := parseSbatchFlagText(f, false)
		if err != nil {
			s.bad(fmt.Sprintf("flags[%d]", i), "%v", err)
			continue
		}
		s.flags = append(s.flags, fl...)
	}
	configured := s.Flavors
	if len(configured) > 0 {
		s.Flavors = make(map[string]Flavor, len(configured))
	}
	for _, name := range flavorNames(configured) {
		s.Flavors[name] = s.checkFlavor("flavors."+name, configured[name])
	}
	if s.DefaultFlavor != "" {
		if _, ok := s.Flavors[s.DefaultFlavor]; !ok {
			s.bad("default_flavor", "%q is not one of the configured flavors (%s)", s.DefaultFlavor, strings.Join(flavorNames(s.Flavors), ", "))
		}
	}
}

// checkFlavor checks one flavor, named key in problems, and parses its memory default and sbatch flags.
func (s *settings) checkFlavor(key string, f Flavor) Flavor {
	var err error
	if f.CPUDefault < 0 {
		s.bad(key+".cpu_default", "must not be negative, not %d", f.CPUDefault)
	}
	if f.UID != nil && *f.UID < 0 {
		s.bad(key+".uid", "must not be negative, not %d", *f.UID)
	}
	if f.MemoryDefault != "" {
		if f.memoryBytes, err = parseMemory(f.MemoryDefault); err != nil {
			s.bad(key+".memory_default", "%v", err)
		}
	}
	f.flags = nil
	for i, text := range f.SlurmFlags {
		fl, err := parseSbatchFlagText(text, false)
		if err != nil {
			s.bad(fmt.Sprintf("%s.slurm_flags[%d]", key, i), "%v", err)
			continue
		}
		f.flags = append(f.flags, fl...)
	}
	return f
}

// checkDefaults checks the per-pod defaults and the pod limit.
func (s *settings) checkDefaults() {
	if s.DefaultUID != nil && *s.DefaultUID < 0 {
		s.bad("default_uid", "must not be negative, not %d", *s.DefaultUID)
	}
	if s.DefaultCPUs < 0 {
		s.bad("default_cpus", "must not be negative, not %d", s.DefaultCPUs)
	}
	if s.DefaultMemory != "" {
		var err error
		if s.defaultMemoryBytes, err = parseMemory(s.DefaultMemory); err != nil {
			s.bad("default_memory", "%v", err)
		}
	}
	if s.Pods < 0 {
		s.bad("pods", "must not be negative, not %d", s.Pods)
	}
}

// applyTimingDefaults fills in the restart backoffs, retries, waits and timeouts left unset.
func (s *settings) applyTimingDefaults() {
	if s.RestartBackoff <= 0 {
		s.RestartBackoff = Duration(10 * time.Second)
	}
	if s.MaxRestartBackoff <= 0 {
		s.MaxRestartBackoff = Duration(5 * time.Minute)
	}
	if s.PullRetries <= 0 {
		s.PullRetries = 3
	}
	if s.KillWait <= 0 {
		s.KillWait = Duration(30 * time.Second) // SLURM's default
	}
	if s.CommandTimeout <= 0 {
		s.CommandTimeout = Duration(60 * time.Second)
	}
	if s.FollowInterval <= 0 {
		s.FollowInterval = Duration(250 * time.Millisecond)
	}
	if s.SqueueMaxAge == nil {
		d := Duration(2 * time.Second)
		s.SqueueMaxAge = &d
	}
}

func canonicalRuntime(r string) string {
	r = strings.ToLower(strings.TrimSpace(r))
	if r == "singularity" {
		return RuntimeApptainer
	}
	return r
}

func knownRuntime(r string) bool {
	switch r {
	case RuntimeApptainer, RuntimeEnroot, RuntimePodman, RuntimeNone:
		return true
	}
	return false
}

func flavorNames(m map[string]Flavor) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// parseMemory reads a memory size the way SLURM users and Kubernetes users write it: "16G", "32000M",
// "1024K", "16GB" (binary units, as SLURM reads them), a plain number of bytes, or a Kubernetes quantity
// ("8Gi", "500M" read as SLURM megabytes).
func parseMemory(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if t == "" {
		return 0, fmt.Errorf("empty memory size")
	}
	units := map[string]int64{"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
	num := strings.TrimSuffix(t, "B")
	if len(num) > 0 {
		if mult, ok := units[num[len(num)-1:]]; ok {
			if n, err := strconv.ParseInt(num[:len(num)-1], 10, 64); err == nil && n >= 0 {
				return n * mult, nil
			}
		}
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	q, err := resource.ParseQuantity(strings.TrimSpace(s))
	if err != nil || q.Sign() < 0 {
		return 0, fmt.Errorf("%q is not a memory size such as 16G, 32000M or 8Gi", s)
	}
	return q.Value(), nil
}
