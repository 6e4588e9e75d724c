package docker

import (
	"errors"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

// Config is the backend's own section of the dispatcher config (backend.Env.Config), as JSON. Every key is
// optional; unknown keys are refused (see shared/settings) so that a typo does not pass silently.
type Config struct {
	// Host is the Docker Engine address (unix:///var/run/docker.sock, tcp://host:2375). Default: DOCKER_HOST,
	// else the local socket. Bind mounts of volumes need the engine on the machine the backend runs on.
	Host string `json:"host"`
	// PauseImage is the infra image each pod's network namespace lives in. Default: an image the backend
	// builds itself from PauseBinary (no registry needed).
	PauseImage string `json:"pause_image"`
	// PauseBinary is the static binary the built pause image runs. Default: "pause" beside the backend's
	// executable (bin/pause, from cmd/pause), else a static busybox of the host.
	PauseBinary string `json:"pause_binary"`
	// Shim is the interlink-shim binary every container runs under (probes, lifecycle hooks). Default:
	// interlink-shim beside the backend's executable (bin/, from cmd/interlink-shim).
	Shim string `json:"shim"`
	// Pods is how many pods the backend accepts at once, reported to interLink as the node's pod capacity.
	Pods int64 `json:"pods"`
	// DataDir overrides the directory of pod files (default: backend.Env.DataDir).
	DataDir string `json:"data_dir"`
	// DefaultPullPolicy applies to containers whose imagePullPolicy is empty (interLink's pods always carry
	// one, filled in by the API server). Default: Kubernetes's rule by tag.
	DefaultPullPolicy v1.PullPolicy `json:"default_pull_policy"`
	// Network is the Docker network pods join (through their pause container). Default: "bridge".
	Network string `json:"network"`
	// GPUs overrides the number of NVIDIA GPUs the engine offers (default: counted from the engine's nvidia
	// runtime and the host's /dev/nvidiaN devices).
	GPUs *int64 `json:"gpus"`
	// RestartBackoff is the first delay before a container is restarted; it doubles up to
	// RestartBackoffMax, as the kubelet's CrashLoopBackOff does. Defaults: "1s" and "5m".
	RestartBackoff    Duration `json:"restart_backoff"`
	RestartBackoffMax Duration `json:"restart_backoff_max"`
	// PreExecImage runs the shell text of a pod's slurm-job.vk.io/pre-exec and
	// interlink.eu/wstunnel-client-commands annotations, in the pod's network namespace before its
	// containers. It needs a POSIX sh, and whatever tools that text uses. Default "busybox:latest".
	PreExecImage string `json:"pre_exec_image"`
	// LogMaxSize is the json-file log size kept per container before rotation. Default "50m".
	LogMaxSize string `json:"log_max_size"`
	// StatusMaxAge bounds how old a status may be while the engine's event stream is down: the backend then
	// lists the engine at most once per StatusMaxAge, whatever the poll rate. Default "2s".
	StatusMaxAge Duration `json:"status_max_age"`
	// ResyncInterval is how often the backend lists every container although the event stream is up, to
	// catch what a stream that stalled without breaking missed. Default "30s".
	ResyncInterval Duration `json:"resync_interval"`
}

// Duration is the config's duration type: a string such as "1s" or "5m".
type Duration = settings.Duration

// ParseConfig reads raw (empty means all defaults) as the section of backend name and fills in the
// defaults. Every problem is reported at once, as settings.Problems naming each key path; warnings name
// the new spelling of each old key used.
func ParseConfig(name string, raw []byte) (Config, []string, error) {
	var c Config
	prefix := settings.Prefix(name)
	warnings, err := settings.Decode(raw, prefix, &c)
	var ps settings.Problems
	if err != nil && !errors.As(err, &ps) {
		return c, warnings, err
	}
	if c.Pods == 0 {
		c.Pods = 110 // the kubelet's default max-pods
	}
	if c.Pods < 0 {
		ps.Add(prefix, "pods", "must be positive, not %d", c.Pods)
	}
	switch c.DefaultPullPolicy {
	case "", v1.PullAlways, v1.PullIfNotPresent, v1.PullNever:
	default:
		ps.Add(prefix, "default_pull_policy", "must be Always, IfNotPresent or Never, not %q", c.DefaultPullPolicy)
	}
	if c.Network == "" {
		c.Network = "bridge"
	}
	if c.Network == "host" || c.Network == "none" || strings.HasPrefix(c.Network, "container:") {
		ps.Add(prefix, "network", "must name a Docker network pods get an address on, not %q", c.Network)
	}
	if c.RestartBackoff <= 0 {
		c.RestartBackoff = Duration(time.Second)
	}
	if c.RestartBackoffMax <= 0 {
		c.RestartBackoffMax = Duration(5 * time.Minute)
	}
	if c.RestartBackoffMax < c.RestartBackoff {
		ps.Add(prefix, "restart_backoff_max", "%s is shorter than restart_backoff (%s)", c.RestartBackoffMax, c.RestartBackoff)
	}
	if c.PreExecImage == "" {
		c.PreExecImage = "busybox:latest"
	}
	if c.LogMaxSize == "" {
		c.LogMaxSize = "50m"
	}
	for _, d := range []struct {
		key string
		v   *Duration
		def time.Duration
	}{{"status_max_age", &c.StatusMaxAge, 2 * time.Second}, {"resync_interval", &c.ResyncInterval, 30 * time.Second}} {
		switch {
		case *d.v < 0:
			ps.Add(prefix, d.key, "%s is negative; it must be a positive duration such as %q", *d.v, Duration(d.def).String())
		case *d.v == 0:
			*d.v = Duration(d.def)
		}
	}
	if c.GPUs != nil && *c.GPUs < 0 {
		ps.Add(prefix, "gpus", "must not be negative, not %d", *c.GPUs)
	}
	return c, warnings, ps.Err()
}
