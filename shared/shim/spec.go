package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// Paths inside the container. The backend bind-mounts the shim binary read-only at BinaryPath and the
// container's state directory (writable) at StateDir, then sets Entrypoint() as the container's entrypoint.
const (
	BinaryPath = "/.interlink/shim"
	StateDir   = "/.interlink/state"
	SpecFile   = "spec.json"
	SpecPath   = StateDir + "/" + SpecFile
)

// DefaultGracePeriodSeconds is Kubernetes' default terminationGracePeriodSeconds.
const DefaultGracePeriodSeconds = 30

// Entrypoint returns the container entrypoint a backend sets (with no cmd) so that the shim runs the container.
func Entrypoint() []string { return []string{BinaryPath, SpecPath} }

// Spec tells the shim what to run and how to watch it. A backend builds it from the pod's container and the
// image configuration and writes it with WriteSpec before it starts the container.
type Spec struct {
	// Argv is the resolved command line of the container (see ResolveArgv); Argv[0] is looked up on the
	// container's PATH when it holds no slash.
	Argv []string `json:"argv"`
	// WorkingDir, when set, is the directory the command and exec hooks and probes run in; empty keeps the
	// working directory the engine gave the shim.
	WorkingDir string `json:"workingDir,omitempty"`
	// Ports are the container's ports, so that probes and hooks can name a port instead of numbering it.
	Ports []v1.ContainerPort `json:"ports,omitempty"`
	// Lifecycle holds the postStart and preStop hooks and the stop signal.
	Lifecycle *v1.Lifecycle `json:"lifecycle,omitempty"`
	// The container's probes, run from inside the container (see the package doc for the rules).
	StartupProbe   *v1.Probe `json:"startupProbe,omitempty"`
	LivenessProbe  *v1.Probe `json:"livenessProbe,omitempty"`
	ReadinessProbe *v1.Probe `json:"readinessProbe,omitempty"`
	// TerminationGracePeriodSeconds bounds preStop plus the stop signal before SIGKILL; nil means 30 s, and
	// anything under 2 s is raised to 2 s as the kubelet does.
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
	// PreStopOnExit runs the preStop hook also when the command ends by itself, so that its output follows
	// the command's in the container log (the interLink test set expects that; Kubernetes does not do it).
	PreStopOnExit bool `json:"preStopOnExit,omitempty"`
	// RunAsNonRoot refuses to run the command as root (uid 0), as the kubelet refuses a container whose
	// securityContext asks for runAsNonRoot. The shim runs as the container's user, so it sees the uid the
	// command would get, whether runAsUser or the image's USER gave it.
	RunAsNonRoot bool `json:"runAsNonRoot,omitempty"`
}

// ContainerSpec is the shim's spec of container c of pod p, to run argv: its ports, hooks, probes, working
// directory, the pod's grace period and whether it must not run as root. A backend changes what its engine
// does itself (the working directory, the grace period its runtime bounds).
func ContainerSpec(p *v1.Pod, c *v1.Container, argv []string) Spec {
	nonRoot := false
	if sc := p.Spec.SecurityContext; sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	if sc := c.SecurityContext; sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	return Spec{
		Argv: argv, WorkingDir: c.WorkingDir, Ports: c.Ports, Lifecycle: c.Lifecycle,
		StartupProbe: c.StartupProbe, LivenessProbe: c.LivenessProbe, ReadinessProbe: c.ReadinessProbe,
		TerminationGracePeriodSeconds: p.Spec.TerminationGracePeriodSeconds,
		// The interLink test set expects preStop's output in the log after a natural exit too.
		PreStopOnExit: true,
		RunAsNonRoot:  nonRoot,
	}
}

// GatesReadiness tells whether the container's readiness is the probes' to give: with a readiness probe,
// or a startup probe (a container that has not started is not ready), it is not ready until they say so.
// Without either a running container is ready. The backends' side is pod.ProbesGateReadiness (the shim
// stays free of that package's dependencies).
func (s Spec) GatesReadiness() bool { return s.ReadinessProbe != nil || s.StartupProbe != nil }

// GracePeriodSeconds returns the effective grace period of the spec: at least the kubelet's floor, and at
// most what a time.Duration holds, so that turning it into one never overflows.
func (s Spec) GracePeriodSeconds() int64 {
	if s.TerminationGracePeriodSeconds == nil {
		return DefaultGracePeriodSeconds
	}
	return min(max(*s.TerminationGracePeriodSeconds, minGracePeriodSeconds), maxGracePeriodSeconds)
}

// maxGracePeriodSeconds is the largest number of seconds a time.Duration holds.
const maxGracePeriodSeconds = int64(math.MaxInt64 / int64(time.Second))

// seconds is n seconds as a time.Duration, negative read as 0 and held at the longest duration there is:
// time.Duration(n)*time.Second overflows past 292 years and would make a timer fire at once.
func seconds(n int64) time.Duration {
	return time.Duration(min(max(n, 0), maxGracePeriodSeconds)) * time.Second
}

// minGracePeriodSeconds is the kubelet's floor, so that a preStop or a stop signal always has a moment.
const minGracePeriodSeconds = 2

// Validate reports what in the spec the shim cannot carry out, as one error sentence, or nil.
func (s Spec) Validate() error {
	var problems []string
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		problems = append(problems, "argv is empty")
	}
	if s.Lifecycle != nil {
		for name, h := range map[string]*v1.LifecycleHandler{"postStart": s.Lifecycle.PostStart, "preStop": s.Lifecycle.PreStop} {
			if h == nil {
				continue
			}
			if err := checkHandler(h.Exec, h.HTTPGet, h.TCPSocket, nil, h.Sleep, s.Ports, true); err != nil {
				problems = append(problems, "lifecycle."+name+": "+err.Error())
			}
		}
		if sig := s.Lifecycle.StopSignal; sig != nil {
			if _, err := parseSignal(string(*sig)); err != nil {
				problems = append(problems, "lifecycle.stopSignal: "+err.Error())
			}
		}
	}
	for name, p := range map[string]*v1.Probe{"startupProbe": s.StartupProbe, "livenessProbe": s.LivenessProbe, "readinessProbe": s.ReadinessProbe} {
		if p == nil {
			continue
		}
		if err := checkHandler(p.Exec, p.HTTPGet, p.TCPSocket, p.GRPC, nil, s.Ports, false); err != nil {
			problems = append(problems, name+": "+err.Error())
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("the shim spec cannot be run: %s", strings.Join(problems, "; "))
}

// WriteSpec creates the container's state directory dir (on the host) and writes s into it as spec.json,
// replacing any state files a previous run of the container left there. Call it before starting the
// container, and mount dir at StateDir.
func WriteSpec(dir string, s Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create the shim state directory: %w", err)
	}
	// The container may run as any user; the directory holds nothing secret and sits inside the pod's own
	// directory, so let whoever runs inside write its state.
	if err := os.Chmod(dir, 0o777); err != nil {
		return fmt.Errorf("cannot open the shim state directory to the container's user: %w", err)
	}
	for _, f := range stateFiles {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot clear the shim's old state: %w", err)
		}
	}
	if s.GatesReadiness() {
		// Not ready until the probes say so, even before the container has started.
		if err := writeFileAtomic(dir, ReadyFile, []byte("false\n"), 0o644); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode the shim spec: %w", err)
	}
	return writeFileAtomic(dir, SpecFile, data, 0o644)
}

// ReadSpec reads and validates a spec file.
func ReadSpec(path string) (Spec, error) {
	var s Spec
	data, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("cannot read the shim spec: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("the shim spec %s is not valid JSON: %w", path, err)
	}
	return s, s.Validate()
}

// ResolveArgv applies Kubernetes' rules to a container and its image's configuration: command replaces the
// image's ENTRYPOINT (and drops its CMD), args replace CMD, and args alone keep the ENTRYPOINT. Command and
// args must already have their $(VAR) references expanded. It fails when nothing is left to run.
func ResolveArgv(c *v1.Container, imageEntrypoint, imageCmd []string) ([]string, error) {
	var argv []string
	switch {
	case len(c.Command) > 0:
		argv = append(append(argv, c.Command...), c.Args...)
	case len(c.Args) > 0:
		argv = append(append(argv, imageEntrypoint...), c.Args...)
	default:
		argv = append(append(argv, imageEntrypoint...), imageCmd...)
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("container %q has nothing to run: neither the pod nor the image %q sets a command; set command in the pod spec", c.Name, c.Image)
	}
	return argv, nil
}
