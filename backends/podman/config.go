package podman

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
)

// Config is the backend's own section of the dispatcher config.
type Config struct {
	// URI is the Podman service: unix:///run/podman/podman.sock (the default), a rootless user's
	// unix:///run/user/<uid>/podman/podman.sock, tcp://host:port or ssh://[user@]host[:port]/path.sock.
	URI string `json:"uri"`
	// Identity is the ssh private key for an ssh:// URI; empty uses the ssh configuration and agent.
	Identity string `json:"identity"`
	// Pods is the pod capacity announced to interLink; 0 leaves it out of the ping.
	Pods int64 `json:"pods"`
	// PullTimeout bounds one image pull (a Go duration, default 10m).
	PullTimeout string `json:"pullTimeout"`
	// Shim is the path of the interlink-shim binary, bind-mounted read-only into every container as its
	// entrypoint (probes and lifecycle hooks run inside the container); default: interlink-shim next to
	// this backend's own executable. It must be a static binary the Podman host can read.
	Shim string `json:"shim"`
	// StatusFreshness bounds how old a status answered from the live view may be while the engine's event
	// stream is down (a Go duration, default 2s); ResyncInterval is how often the view is listed in full
	// anyway (default 30s). See view.go.
	StatusFreshness string `json:"status_freshness"`
	ResyncInterval  string `json:"resync_interval"`
}

const (
	defaultPullTimeout     = 10 * time.Minute
	defaultStatusFreshness = 2 * time.Second
	defaultResyncInterval  = 30 * time.Second
)

// positiveDuration reads config key key; empty is def.
func positiveDuration(key, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("config key %s %q is not a positive duration such as %v", key, v, def)
	}
	return d, nil
}

// parseConfig reads the backend's config section; errors name the key at fault.
func parseConfig(raw json.RawMessage) (Config, time.Duration, error) {
	var cfg Config
	if len(raw) > 0 && strings.TrimSpace(string(raw)) != "null" {
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, 0, fmt.Errorf("the podman backend's config is not valid (keys: uri, identity, pods, pullTimeout, shim, status_freshness, resync_interval): %v", err)
		}
	}
	if cfg.URI == "" {
		cfg.URI = libpod.DefaultURI
	}
	if cfg.Pods < 0 {
		return cfg, 0, fmt.Errorf("config key pods is %d; it must be positive, or 0 to leave the pod capacity out", cfg.Pods)
	}
	var err error
	pull := defaultPullTimeout
	if cfg.PullTimeout != "" {
		d, perr := time.ParseDuration(cfg.PullTimeout)
		if perr != nil || d <= 0 {
			return cfg, 0, fmt.Errorf("config key pullTimeout %q is not a positive duration such as 10m", cfg.PullTimeout)
		}
		pull = d
	}
	if _, err := positiveDuration("status_freshness", cfg.StatusFreshness, defaultStatusFreshness); err != nil {
		return cfg, 0, err
	}
	if _, err := positiveDuration("resync_interval", cfg.ResyncInterval, defaultResyncInterval); err != nil {
		return cfg, 0, err
	}
	if cfg.Shim, err = shimPath(cfg.Shim); err != nil {
		return cfg, 0, err
	}
	return cfg, pull, nil
}

// shimName is the shim binary's file name, looked for next to the backend's executable by default.
const shimName = "interlink-shim"

// shimPath finds the shim binary (configured, or next to the executable) and checks that it is a regular
// executable file, so that a backend without one fails at start rather than at the first pod.
func shimPath(configured string) (string, error) {
	path := configured
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("cannot find this backend's executable to look for %s next to it (%v); set config key shim to the shim binary's path", shimName, err)
		}
		path = filepath.Join(filepath.Dir(exe), shimName)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("config key shim %q: %v", path, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case err != nil && configured == "":
		return "", fmt.Errorf("the shim binary %s is missing: build cmd/interlink-shim there or set config key shim to its path", abs)
	case err != nil:
		return "", fmt.Errorf("config key shim: the shim binary %s cannot be used: %v", abs, err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("config key shim: %s is not an executable file (mode %v)", abs, fi.Mode())
	}
	return abs, nil
}
