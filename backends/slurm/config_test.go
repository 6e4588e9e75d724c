package slurm

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	cfgsettings "github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

func TestConfigErrorsNameTheKey(t *testing.T) {
	const p = "backends.slurm.config."
	cases := map[string]string{
		`{"runtime": "docker"}`:                                  p + `runtime: "docker" is not a runtime`,
		`{"flavors": {"x": {"memory_default": "lots"}}}`:         p + "flavors.x.memory_default: ",
		`{"default_flavor": "nope"}`:                             p + `default_flavor: "nope" is not one of the configured flavors`,
		`{"sbatch": "'unterminated"}`:                            p + "sbatch: ",
		`{"flags": ["-c"]}`:                                      p + "flags[0]: ",
		`{"unknownKey": 1}`:                                      p + "unknownKey: is not a known key",
		`{"flavors": {"x": {"slurm_flags": ["positional"]}}}`:    p + "flavors.x.slurm_flags[0]: ",
		`{"kill_wait": "30 seconds"}`:                            p + `kill_wait: "30 seconds" is not a duration such as "30s"`,
		`{"kill_wait": 30}`:                                      p + `kill_wait: 30 is not a duration such as "30s" or "10m"`,
		`{"killwait": "30s"}`:                                    p + "killwait: is not a known key; the key is spelled kill_wait",
		`{"restart_backoff": "1m", "restart_backoff_max": "1s"}`: p + "restart_backoff_max: 1s must not be shorter than restart_backoff (1m0s)",
		`{"pods": -1}`:                                           p + "pods: must not be negative, not -1",
		`{"default_cpus": "four"}`:                               p + "default_cpus: must be a whole number, not \"four\"",
		`{"taints": [{"efect": "x"}]}`:                           p + `taints[0]: has the unknown key "efect"`,
	}
	for in, want := range cases {
		_, _, err := parseConfig("slurm", json.RawMessage(in), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %s: err = %v, want one containing %q", in, err, want)
		}
	}
}

// TestConfigReportsEveryProblemAtOnce: type errors (from the decoding) and value errors (from the checks)
// come together, and one bad flavor does not hide another.
func TestConfigReportsEveryProblemAtOnce(t *testing.T) {
	_, _, err := parseConfig("slurm", json.RawMessage(`{"runtime": "docker", "pods": "many", "kill_wait": "long",
		"flavors": {"a": {"cpu_default": -1}, "b": {"memory_default": "lots"}}, "default_memory": "heaps", "bash": "bash"}`), t.TempDir())
	var ps cfgsettings.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %T %v, want settings.Problems", err, err)
	}
	for _, key := range []string{"runtime", "pods", "kill_wait", "flavors.a.cpu_default", "flavors.b.memory_default", "default_memory", "bash"} {
		if !ps.Has("backends.slurm.config." + key) {
			t.Errorf("no problem names %s: %v", key, err)
		}
	}
	if len(ps) != 7 {
		t.Errorf("%d problems, want 7: %v", len(ps), err)
	}
}

// TestOldCamelCaseKeysStillWork: the keys of the previous release are read as before, each with a warning
// naming the key that replaces it.
func TestOldCamelCaseKeysStillWork(t *testing.T) {
	s, warnings, err := parseConfig("slurm", json.RawMessage(`{"commandPrefix": "ssh login01", "squeue": "sudo -u alice squeue",
		"killWait": "20s", "maxRestartBackoff": "1m", "restartBackoff": "2s", "defaultMemory": "1G", "defaultCPUs": 2,
		"flavors": {"gpu": {"cpuDefault": 8, "slurmFlags": ["--gres=gpu:1"]}}, "defaultFlavor": "gpu",
		"apptainer": {"imagePrefix": "oras://"}}`), "/data")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.squeue.String(); got != "ssh login01 sudo -u alice squeue" {
		t.Errorf("squeue command line = %q", got)
	}
	if s.Root != "/data/pods" {
		t.Errorf("root = %q", s.Root)
	}
	if s.KillWait.D() != 20*time.Second || s.MaxRestartBackoff.D() != time.Minute || s.RestartBackoff.D() != 2*time.Second ||
		s.defaultMemoryBytes != 1<<30 || s.DefaultCPUs != 2 || s.Flavors["gpu"].CPUDefault != 8 || len(s.Flavors["gpu"].flags) != 1 ||
		s.DefaultFlavor != "gpu" || *s.Apptainer.ImagePrefix != "oras://" {
		t.Errorf("settings %+v", s.Config)
	}
	want := map[string]string{
		"commandPrefix": "command_prefix", "killWait": "kill_wait", "maxRestartBackoff": "restart_backoff_max",
		"restartBackoff": "restart_backoff", "defaultMemory": "default_memory", "defaultCPUs": "default_cpus",
		"flavors.gpu.cpuDefault": "flavors.gpu.cpu_default", "flavors.gpu.slurmFlags": "flavors.gpu.slurm_flags",
		"defaultFlavor": "default_flavor", "apptainer.imagePrefix": "apptainer.image_prefix",
	}
	if len(warnings) != len(want) {
		t.Errorf("%d warnings, want %d: %q", len(warnings), len(want), warnings)
	}
	for old, nu := range want {
		w := "config key backends.slurm.config." + old + " is now spelled backends.slurm.config." + nu + ";"
		found := false
		for _, got := range warnings {
			found = found || strings.HasPrefix(got, w)
		}
		if !found {
			t.Errorf("no warning %q in %q", w, warnings)
		}
	}
}

func TestSnakeCaseKeys(t *testing.T) {
	s, warnings, err := parseConfig("slurm", json.RawMessage(`{"command_prefix": "ssh login01", "kill_wait": "20s",
		"restart_backoff_max": "1m", "pull_retries": 5, "command_timeout": "5s", "follow_interval": "1s",
		"resource_command": "cat /etc/res.json", "default_uid": 1000}`), "/data")
	if err != nil || len(warnings) != 0 {
		t.Fatalf("err %v, warnings %q", err, warnings)
	}
	if s.sbatch.String() != "ssh login01 sbatch" || s.KillWait.D() != 20*time.Second || s.MaxRestartBackoff.D() != time.Minute ||
		s.PullRetries != 5 || s.CommandTimeout.D() != 5*time.Second || s.FollowInterval.D() != time.Second ||
		s.resourceCommand.String() != "cat /etc/res.json" || *s.DefaultUID != 1000 {
		t.Errorf("settings %+v", s.Config)
	}
}
