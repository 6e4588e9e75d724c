package slurm

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// containerSpec is one container of a pod, resolved and ready to be rendered into the job script by a
// runtime. Paths are absolute; nothing in it has been quoted yet.
type containerSpec struct {
	Pod        *v1.Pod
	Container  *v1.Container
	Init       bool
	Name       string // the container's name, a DNS label
	RunName    string // the name the runtime gives the container on the node, unique per pod and container
	Dir        string // the container's own directory (state, logs, env files)
	Image      string // the image reference with the runtime's prefix applied
	Command    []string
	Args       []string
	Env        []v1.EnvVar
	Mounts     []pod.Mount
	Resources  pod.Resources
	PullPolicy v1.PullPolicy
	WorkingDir string
	RunAsUser  *int64
	RunAsGroup *int64
	// NoNewPrivileges is set by allowPrivilegeEscalation: false.
	NoNewPrivileges bool
	// Launcher is shell text put before the runtime's command (mpiexec for slurm-job.vk.io/mpi-flags).
	Launcher string
	// Shim is the interlink-shim binary and ShimDir the container's shim state directory (holding
	// spec.json), both on the host; every runtime runs the container through the shim.
	Shim    string
	ShimDir string
	// TerminationFile, when set, is the host file the runtime binds at the container's
	// terminationMessagePath (shim.PrepareTerminationFile makes it in ShimDir).
	TerminationFile string
	// ArgvInJob is set when the argv depends on the image's ENTRYPOINT/CMD, which only the compute node's
	// engine can tell: the job writes spec.json after the pull from the image's config, the container's
	// ArgsJSON (its args as a JSON array, "" when it has none) and SpecTail (spec.json without its argv).
	ArgvInJob bool
	ArgsJSON  string
	SpecTail  string
}

// shimUnresolved is the argv of a spec whose argv the job writes after the pull: it is never run, unless
// the job could not write it, and then fails as a missing command would.
const shimUnresolved = "/.interlink/argv-not-resolved"

// shimArgv is the argv the shim runs for a container whose command and args are already expanded: command
// and args as Kubernetes combines them, or, when the image's defaults are needed, what the runtime offers
// in their place (imageDefault; nil when the job resolves it).
func shimArgv(spec *containerSpec, imageDefault []string) ([]string, error) {
	c := *spec.Container
	c.Command, c.Args = spec.Command, spec.Args
	if len(spec.Command) > 0 {
		return shim.ResolveArgv(&c, nil, nil)
	}
	if imageDefault == nil {
		return []string{shimUnresolved}, nil
	}
	return shim.ResolveArgv(&c, imageDefault, nil)
}

// containerScript is what a runtime renders for one container: the bodies of three shell functions of the
// job script. Every word taken from the pod is quoted with shellQuote.
type containerScript struct {
	// Pull makes the image available; it prints why it failed and returns 3 when the image is missing and may
	// not be pulled (imagePullPolicy Never), another non-zero code for a pull that may be retried.
	Pull string
	// Run runs the container in the foreground, its output on stdout and stderr.
	Run string
	// After (given the run's exit code as $1) prints a termination reason (OOMKilled) when the runtime
	// knows one, and removes what the run left behind. Stop stops the running container gracefully within
	// $GRACE seconds.
	After, Stop string
	// Files are extra files the runtime needs in the container's directory (name → content, mode 0600).
	Files map[string][]byte
}

// containerRuntime renders containers for one runtime inside the job script.
type containerRuntime interface {
	Name() string
	// Check refuses, with a sentence naming the field, what this runtime cannot honour for the container.
	Check(spec *containerSpec) error
	// Render returns the container's shell functions.
	Render(spec *containerSpec) (containerScript, error)
}

// newRuntime returns the runtime named name (canonical), configured from s.
func (s *settings) newRuntime(name string) (containerRuntime, error) {
	switch name {
	case RuntimeApptainer:
		return &apptainerRuntime{cfg: s.Apptainer}, nil
	case RuntimeEnroot:
		return &enrootRuntime{cfg: s.Enroot}, nil
	case RuntimePodman:
		return &podmanRuntime{cfg: s.Podman}, nil
	case RuntimeNone:
		return noneRuntime{}, nil
	}
	return nil, fmt.Errorf("runtime %q is unknown", name)
}

// podRuntime returns the runtime a pod runs with: its slurm-job.vk.io/runtime annotation when the config
// allows it, else the configured one.
func (s *settings) podRuntime(p *v1.Pod) (string, error) {
	name, ok := p.Annotations[AnnotationRuntime]
	if !ok {
		return s.Runtime, nil
	}
	name = canonicalRuntime(name)
	if !s.runtimes[name] {
		allowed := make([]string, 0, len(s.runtimes))
		for _, r := range []string{RuntimeApptainer, RuntimeEnroot, RuntimePodman, RuntimeNone} {
			if s.runtimes[r] {
				allowed = append(allowed, r)
			}
		}
		return "", fmt.Errorf("annotation %s: runtime %q is not enabled on this backend; enabled: %s", AnnotationRuntime, p.Annotations[AnnotationRuntime], strings.Join(allowed, ", "))
	}
	return name, nil
}

var imageScheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://`)

// imageRef puts prefix before image unless the image already carries a scheme ("docker://", "oras://") or is
// an absolute path (a SIF file, a squashfs image).
func imageRef(image, prefix string) string {
	if prefix == "" || strings.HasPrefix(image, "/") || imageScheme.MatchString(image) || strings.HasPrefix(image, prefix) {
		return image
	}
	return prefix + image
}

// envIdentifier matches names a shell can hold as variables.
var envIdentifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// shellEnvFile renders variables as NAME='value' lines: a file both bash (sourced with set -a) and
// Apptainer's --env-file read without evaluating anything, keeping multi-line values intact.
func shellEnvFile(env []v1.EnvVar) ([]byte, error) {
	var b strings.Builder
	for _, e := range env {
		if !envIdentifier.MatchString(e.Name) {
			return nil, fmt.Errorf("env %q: the name must be a shell identifier (letters, digits and '_', not starting with a digit) to be passed safely into a SLURM job", e.Name)
		}
		b.WriteString(e.Name)
		b.WriteByte('=')
		b.WriteString("'" + strings.ReplaceAll(e.Value, "'", `'"'"'`) + "'")
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// literalEnvFile renders variables as NAME=value lines, the literal format of Podman's --env-file and of
// /etc/environment; multi is the variables whose values hold a line break and cannot go into it.
func literalEnvFile(env []v1.EnvVar) (file []byte, multi []v1.EnvVar) {
	var b strings.Builder
	for _, e := range env {
		if strings.ContainsAny(e.Value, "\n\r") {
			multi = append(multi, e)
			continue
		}
		b.WriteString(e.Name + "=" + e.Value + "\n")
	}
	return []byte(b.String()), multi
}

// cpuString renders nano CPUs as a decimal number of CPUs ("0.5", "2").
func cpuString(nano int64) string {
	return strconv.FormatFloat(float64(nano)/1e9, 'f', -1, 64)
}

// bindPathOK refuses paths that a runtime's colon-separated bind syntax cannot carry.
func bindPathOK(spec *containerSpec, m pod.Mount, runtime string) error {
	for _, p := range []string{m.Source, m.Target} {
		if strings.ContainsAny(p, ":,\n") {
			return fmt.Errorf("container %q volumeMount %s: %s cannot bind a path holding ':' or ',' (%q)", spec.Name, m.Target, runtime, p)
		}
	}
	return nil
}

// annotationWords reads a shell-quoted annotation of extra runtime options.
func annotationWords(p *v1.Pod, key string) ([]string, error) {
	text, ok := p.Annotations[key]
	if !ok {
		return nil, nil
	}
	words, err := splitWords(text)
	if err != nil {
		return nil, fmt.Errorf("annotation %s: %w", key, err)
	}
	return words, nil
}

// pullNeverNeedsPath refuses imagePullPolicy Never for a registry image on runtimes that always resolve
// registry images when they start a container; an image given as a path on the node never needs a pull.
func pullNeverNeedsPath(spec *containerSpec, runtime string) error {
	if spec.Container.ImagePullPolicy == v1.PullNever && !strings.HasPrefix(spec.Image, "/") {
		return fmt.Errorf("container %q imagePullPolicy: %s resolves registry images when it starts a container, so Never cannot be honoured; give the image as an absolute path on the nodes", spec.Name, runtime)
	}
	return nil
}

// podUser is the uid a pod's job runs as, from its pod-level securityContext.
func podUser(p *v1.Pod) *int64 {
	if sc := p.Spec.SecurityContext; sc != nil {
		return sc.RunAsUser
	}
	return nil
}

// sameUserAsJob refuses a container-level user that differs from the job's: runtimes that run containers as
// the job's own user cannot switch users per container.
func sameUserAsJob(spec *containerSpec, runtime string) error {
	if spec.RunAsUser == nil {
		return nil
	}
	if pu := podUser(spec.Pod); pu == nil || *pu != *spec.RunAsUser {
		return fmt.Errorf("container %q securityContext.runAsUser: %s runs every container as the job's user; set runAsUser on the pod instead", spec.Name, runtime)
	}
	return nil
}

// imageDefaultArgv is what a runtime runs in place of the image's ENTRYPOINT/CMD when the pod gives no
// command: Apptainer's runscript (made from them, taking args in place of CMD) and Enroot's /etc/rc; nil when
// the job reads them from the image (Podman) or there is no image (none).
func imageDefaultArgv(runtime string) []string {
	switch runtime {
	case RuntimeApptainer:
		return []string{"/.singularity.d/runscript"}
	case RuntimeEnroot:
		return []string{"/etc/rc"}
	}
	return nil
}

// shimGrace is the grace period the shim gets for a container's stop: the pod's, shortened when SLURM's
// KillWait would kill the job before the shim and its runtime have stopped (5 s are kept for the runtime).
func shimGrace(podGrace, killWait time.Duration) time.Duration {
	g := podGrace
	if killWait > 0 && g > killWait-7*time.Second {
		g = killWait - 7*time.Second
	}
	return max(g, 2*time.Second).Round(time.Second)
}

// writeShimSpec writes the container's shim spec into spec.ShimDir (a spec the shim cannot carry out is a
// KindInvalid error naming the container), and, when the job resolves the argv,
// the spec without its argv into the container's directory (spec.tail) for the job to complete.
func writeShimSpec(spec *containerSpec, runtime string, grace time.Duration) error {
	c := spec.Container
	argv, err := shimArgv(spec, imageDefaultArgv(runtime))
	if err != nil {
		return backend.Invalid("%v", err)
	}
	g := int64(grace / time.Second)
	ss := shim.Spec{Argv: argv, Ports: c.Ports, Lifecycle: c.Lifecycle, StartupProbe: c.StartupProbe,
		LivenessProbe: c.LivenessProbe, ReadinessProbe: c.ReadinessProbe, TerminationGracePeriodSeconds: &g,
		PreStopOnExit: true}
	if runtime == RuntimeNone {
		ss.WorkingDir = spec.WorkingDir
	}
	if err := ss.Validate(); err != nil {
		return backend.Invalid("container %q: %v", spec.Name, err)
	}
	if err := shim.WriteSpec(spec.ShimDir, ss); err != nil {
		return fmt.Errorf("cannot write the shim's spec of container %q: %w", spec.Name, err)
	}
	if !spec.ArgvInJob {
		return nil
	}
	ss.Argv = nil
	data, err := json.Marshal(ss)
	if err != nil {
		return err
	}
	const head = `{"argv":null`
	if !strings.HasPrefix(string(data), head) {
		return fmt.Errorf("the shim's spec does not start with its argv: %.40s", data)
	}
	return writeFileAtomic(filepath.Join(spec.Dir, specTailFile), data[len(head):], 0o644)
}

// specTailFile holds, in a container's directory, its shim spec after the argv (see writeShimSpec).
const specTailFile = "spec.tail"
