package slurm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
	CommandPrefix string `json:"commandPrefix"`
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
	DefaultFlavor string            `json:"defaultFlavor"`
	// DefaultUID submits jobs as this user (sbatch --uid) unless a flavor or the pod says otherwise.
	DefaultUID *int64 `json:"defaultUID"`
	// DefaultCPUs and DefaultMemory size a job whose pod and flavor say nothing; without them SLURM's own
	// defaults apply (which may be the whole node's memory).
	DefaultCPUs   int64  `json:"defaultCPUs"`
	DefaultMemory string `json:"defaultMemory"`
	// Partitions restrict the capacity reported for the ping to these partitions' nodes (default: all nodes).
	Partitions []string `json:"partitions"`
	// Pods is the number of pods reported in the capacity; 0 leaves it out.
	Pods int64 `json:"pods"`
	// ResourceCommand, when set, is run instead of sinfo for the capacity; it prints a JSON object like the
	// ping's resources: {"cpu": "64", "memory": "256Gi", "pods": "100", "accelerators": [...]}.
	ResourceCommand string `json:"resourceCommand"`
	// Taints are reported with the capacity.
	Taints []v1.Taint `json:"taints"`
	// RestartBackoff is the first wait before a container is restarted inside its job; it doubles up to
	// MaxRestartBackoff.
	RestartBackoff    Duration `json:"restartBackoff"`
	MaxRestartBackoff Duration `json:"maxRestartBackoff"`
	// PullRetries is how many times a job tries to pull an image before it reports ErrImagePull for good.
	PullRetries int `json:"pullRetries"`
	// KillWait is the cluster's KillWait (slurm.conf): how long SLURM waits between SIGTERM and SIGKILL when it
	// stops a job itself (time limit, preemption). A container's graceful stop inside the job is bounded by it.
	KillWait Duration `json:"killWait"`
	// CommandTimeout bounds each SLURM command.
	CommandTimeout Duration `json:"commandTimeout"`
	// SqueueMaxAge is how long one squeue run answers every status, delete and log follow that comes after
	// it (callers meanwhile wait for the run in flight); "0s" shares only the run in flight. Default 2s.
	SqueueMaxAge *Duration `json:"squeue_max_age"`
	// FollowInterval is how often a followed log is polled for new lines.
	FollowInterval Duration `json:"followInterval"`
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
	ImagePrefix *string `json:"imagePrefix"`
}

// Flavor is a named preset of job resources and sbatch options.
type Flavor struct {
	Description string `json:"description"`
	// CPUDefault and MemoryDefault size the job when the pod sets no CPU or memory of its own.
	CPUDefault    int64  `json:"cpuDefault"`
	MemoryDefault string `json:"memoryDefault"` // "16G", "32000M", "8Gi"
	// UID submits the flavor's jobs as this user.
	UID *int64 `json:"uid"`
	// SlurmFlags are sbatch options (each element may hold several, shell-quoted).
	SlurmFlags []string `json:"slurmFlags"`

	flags       []sbatchFlag
	memoryBytes int64
}

// Duration is a time.Duration written as a string ("10s", "5m") in the config.
type Duration time.Duration

// UnmarshalJSON reads "10s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("a duration must be a string such as \"10s\" or a number of seconds")
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"10s\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

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
}

// parseConfig reads the backend's config section and checks it; errors name the key at fault.
func parseConfig(raw json.RawMessage, dataDir string) (*settings, error) {
	var c Config
	if len(bytes.TrimSpace(raw)) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("slurm backend config: %w", err)
		}
	}
	return c.check(dataDir)
}

func (c Config) check(dataDir string) (*settings, error) {
	s := &settings{Config: c}
	for _, step := range []func() error{
		func() error { return s.checkPaths(dataDir) },
		s.checkCommands,
		s.checkRuntimes,
		s.checkFlavors,
		s.checkDefaults,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	s.applyTimingDefaults()
	if s.MaxRestartBackoff < s.RestartBackoff {
		return nil, fmt.Errorf("maxRestartBackoff: must not be shorter than restartBackoff")
	}
	if *s.SqueueMaxAge < 0 {
		return nil, fmt.Errorf("squeue_max_age: must not be negative")
	}
	return s, nil
}

// checkPaths resolves the pod directory root, the shim and bash to absolute paths.
func (s *settings) checkPaths(dataDir string) error {
	if s.Root == "" {
		if dataDir == "" {
			return fmt.Errorf("root: no pod directory root is configured and the backend has no data directory")
		}
		s.Root = filepath.Join(dataDir, "pods")
	}
	if !filepath.IsAbs(s.Root) {
		abs, err := filepath.Abs(s.Root)
		if err != nil {
			return fmt.Errorf("root: %w", err)
		}
		s.Root = abs
	}
	if s.Shim == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("shim: the backend cannot find its own executable to look for interlink-shim beside it (%v); set the key shim", err)
		}
		s.Shim = filepath.Join(filepath.Dir(exe), "interlink-shim")
	}
	if !filepath.IsAbs(s.Shim) {
		abs, err := filepath.Abs(s.Shim)
		if err != nil {
			return fmt.Errorf("shim: %w", err)
		}
		s.Shim = abs
	}
	return nil
}

// checkCommands parses the SLURM command lines (with the command prefix) and the resource command.
func (s *settings) checkCommands() error {
	var err error
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
		if *cmd.dst, err = parseCommandLine(cmd.key, line); err != nil {
			return err
		}
	}
	if s.ResourceCommand != "" {
		if s.resourceCommand, err = parseCommandLine("resourceCommand", s.ResourceCommand); err != nil {
			return err
		}
	}
	return nil
}

// checkRuntimes checks bash, the default runtime and the allowed runtimes, and fills in each runtime's
// defaults.
func (s *settings) checkRuntimes() error {
	if s.Bash == "" {
		s.Bash = "/bin/bash"
	}
	if strings.ContainsAny(s.Bash, " \n") || !filepath.IsAbs(s.Bash) {
		return fmt.Errorf("bash: %q must be an absolute path without spaces", s.Bash)
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
			return fmt.Errorf("%s: %q is not a runtime; use apptainer, singularity, enroot, podman or none", key, r)
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
	return nil
}

// checkFlavors parses the backend-wide sbatch flags and each flavor, and checks the default flavor names
// one of them.
func (s *settings) checkFlavors() error {
	for i, f := range s.Flags {
		fl, err := parseSbatchFlagText(f, false)
		if err != nil {
			return fmt.Errorf("flags[%d]: %w", i, err)
		}
		s.flags = append(s.flags, fl...)
	}
	configured := s.Flavors
	if len(configured) > 0 {
		s.Flavors = make(map[string]Flavor, len(configured))
	}
	for name, f := range configured {
		checked, err := checkFlavor("flavors."+name, f)
		if err != nil {
			return err
		}
		s.Flavors[name] = checked
	}
	if s.DefaultFlavor != "" {
		if _, ok := s.Flavors[s.DefaultFlavor]; !ok {
			return fmt.Errorf("defaultFlavor: %q is not one of the configured flavors (%s)", s.DefaultFlavor, strings.Join(flavorNames(s.Flavors), ", "))
		}
	}
	return nil
}

// checkFlavor checks one flavor, named key in errors, and parses its memory default and sbatch flags.
func checkFlavor(key string, f Flavor) (Flavor, error) {
	var err error
	if f.CPUDefault < 0 {
		return f, fmt.Errorf("%s.cpuDefault: must not be negative", key)
	}
	if f.UID != nil && *f.UID < 0 {
		return f, fmt.Errorf("%s.uid: must not be negative", key)
	}
	if f.MemoryDefault != "" {
		if f.memoryBytes, err = parseMemory(f.MemoryDefault); err != nil {
			return f, fmt.Errorf("%s.memoryDefault: %w", key, err)
		}
	}
	f.flags = nil
	for i, text := range f.SlurmFlags {
		fl, err := parseSbatchFlagText(text, false)
		if err != nil {
			return f, fmt.Errorf("%s.slurmFlags[%d]: %w", key, i, err)
		}
		f.flags = append(f.flags, fl...)
	}
	return f, nil
}

// checkDefaults checks the per-pod defaults and the pod limit.
func (s *settings) checkDefaults() error {
	if s.DefaultUID != nil && *s.DefaultUID < 0 {
		return fmt.Errorf("defaultUID: must not be negative")
	}
	if s.DefaultCPUs < 0 {
		return fmt.Errorf("defaultCPUs: must not be negative")
	}
	if s.DefaultMemory != "" {
		var err error
		if s.defaultMemoryBytes, err = parseMemory(s.DefaultMemory); err != nil {
			return fmt.Errorf("defaultMemory: %w", err)
		}
	}
	if s.Pods < 0 {
		return fmt.Errorf("pods: must not be negative")
	}
	return nil
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
