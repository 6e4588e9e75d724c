package podman

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

// Config is the backend's own section of the dispatcher config. Keys are snake_case; the `was` spelling of
// a key is accepted, with a warning, for one release.
type Config struct {
	// URI is the Podman service: unix:///run/podman/podman.sock (the default), a rootless user's
	// unix:///run/user/<uid>/podman/podman.sock, tcp://host:port or ssh://[user@]host[:port]/path.sock.
	URI string `json:"uri"`
	// Identity is the ssh private key for an ssh:// URI; empty uses the ssh configuration and agent.
	Identity string `json:"identity"`
	// Pods is the pod capacity announced to interLink; 0 leaves it out of the ping.
	Pods int64 `json:"pods"`
	// PullTimeout bounds one image pull (default 10m).
	PullTimeout settings.Duration `json:"pull_timeout" was:"pullTimeout"`
	// Shim is the path of the interlink-shim binary, bind-mounted read-only into every container as its
	// entrypoint (probes and lifecycle hooks run inside the container); default: interlink-shim next to
	// this backend's own executable. It must be a static binary the Podman host can read.
	Shim string `json:"shim"`
	// StatusMaxAge bounds how old a status answered from the live view may be while the engine's event
	// stream is down (default 2s); ResyncInterval is how often the view is listed in full anyway (default
	// 30s). See view.go.
	StatusMaxAge   settings.Duration `json:"status_max_age"`
	ResyncInterval settings.Duration `json:"resync_interval"`
}

const (
	defaultPullTimeout    = 10 * time.Minute
	defaultStatusMaxAge   = 2 * time.Second
	defaultResyncInterval = 30 * time.Second
)

// durationOr is d, or def when d is unset.
func durationOr(d settings.Duration, def time.Duration) time.Duration {
	if d > 0 {
		return d.D()
	}
	return def
}

// parseConfig reads the section of backend name, reporting every problem at once as settings.Problems
// naming each key path; warnings name the new spelling of each old key used.
func parseConfig(name string, raw json.RawMessage) (cfg Config, pull time.Duration, warnings []string, err error) {
	prefix := settings.Prefix(name)
	warnings, err = settings.Decode(raw, prefix, &cfg)
	var ps settings.Problems
	if err != nil && !errors.As(err, &ps) {
		return cfg, 0, warnings, err
	}
	if cfg.URI == "" {
		cfg.URI = libpod.DefaultURI
	}
	if cfg.Pods < 0 {
		ps.Add(prefix, "pods", "must be positive, or 0 to leave the pod capacity out, not %d", cfg.Pods)
	}
	pull = defaultPullTimeout
	if cfg.PullTimeout > 0 {
		pull = cfg.PullTimeout.D()
	} else if cfg.PullTimeout < 0 {
		ps.Add(prefix, "pull_timeout", "%s is negative; it must be a positive duration such as \"10m\"", cfg.PullTimeout)
	}
	for _, d := range []struct {
		key string
		v   settings.Duration
	}{{"status_max_age", cfg.StatusMaxAge}, {"resync_interval", cfg.ResyncInterval}} {
		if d.v < 0 {
			ps.Add(prefix, d.key, "%s is negative; it must be a positive duration such as \"2s\"", d.v)
		}
	}
	if !ps.Has(settings.Join(prefix, "shim")) {
		shim, serr := shimPath(cfg.Shim)
		if serr != nil {
			ps.Add(prefix, "shim", "%v", serr)
		}
		cfg.Shim = shim
	}
	return cfg, pull, warnings, ps.Err()
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
			return "", fmt.Errorf("cannot find this backend's executable to look for %s next to it (%v); set it to the shim binary's path", shimName, err)
		}
		path = filepath.Join(filepath.Dir(exe), shimName)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%q: %v", path, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case err != nil && configured == "":
		return "", fmt.Errorf("the shim binary %s is missing: build cmd/interlink-shim there or set this key to its path", abs)
	case err != nil:
		return "", fmt.Errorf("the shim binary %s cannot be used: %v", abs, err)
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%s is not an executable file (mode %v)", abs, fi.Mode())
	}
	return abs, nil
}
