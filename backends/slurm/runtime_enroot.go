package slurm

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// enrootRuntime runs each container with Enroot inside the job: the image is imported and unpacked once per
// container (enroot import, enroot create), then started with the default options (--rw) and the pod's
// slurm-job.vk.io/enroot-options and enroot-mounts. The environment file is mounted on /etc/environment,
// which Enroot reads when the container starts, as the reference plugin does. Enroot has no CPU or memory
// limits of its own: the job's allocation (--cpus-per-task, --mem) bounds the pod.
type enrootRuntime struct{ cfg RuntimeConfig }

func (r *enrootRuntime) Name() string { return RuntimeEnroot }

func (r *enrootRuntime) Check(spec *containerSpec) error {
	for _, m := range spec.Mounts {
		if strings.ContainsAny(m.Source+m.Target, " \t\n") {
			return fmt.Errorf("container %q volumeMount %s: Enroot's mount syntax cannot carry a path with blanks", spec.Name, m.Target)
		}
	}
	for _, e := range spec.Env {
		if strings.ContainsAny(e.Value, "\n\r") {
			return fmt.Errorf("container %q env %s: Enroot reads the environment from /etc/environment, which cannot hold a multi-line value", spec.Name, e.Name)
		}
	}
	if err := pullNeverNeedsPath(spec, "Enroot"); err != nil {
		return err
	}
	switch {
	case spec.NoNewPrivileges:
		return fmt.Errorf("container %q securityContext.allowPrivilegeEscalation: Enroot has no option to forbid privilege escalation", spec.Name)
	case spec.WorkingDir != "":
		return fmt.Errorf("container %q workingDir: Enroot has no option to set the working directory; use the image's, or another runtime", spec.Name)
	case spec.Command == nil && spec.Args != nil:
		return fmt.Errorf("container %q args: Enroot cannot keep the image's entrypoint while replacing its arguments; set command too", spec.Name)
	case spec.RunAsGroup != nil:
		return fmt.Errorf("container %q securityContext.runAsGroup: Enroot runs containers as the job's user and group", spec.Name)
	}
	return sameUserAsJob(spec, "Enroot")
}

func (r *enrootRuntime) Render(spec *containerSpec) (containerScript, error) {
	bin, err := splitWords(r.cfg.Path)
	if err != nil || len(bin) == 0 {
		return containerScript{}, fmt.Errorf("enroot.path %q is not a command line", r.cfg.Path)
	}
	opts, err := annotationWords(spec.Pod, AnnotationEnrootOptions)
	if err != nil {
		return containerScript{}, err
	}
	mounts, err := annotationWords(spec.Pod, AnnotationEnrootMounts)
	if err != nil {
		return containerScript{}, err
	}
	envFile, _ := literalEnvFile(spec.Env)
	sqsh := filepath.Join(spec.Dir, "image.sqsh")
	e := shellJoin(bin)
	pull := fmt.Sprintf("rm -f %s\n  %s import --output %s %s && %s create --force --name %s %s",
		shellQuote(sqsh), e, shellQuote(sqsh), shellQuote(spec.Image), e, shellQuote(spec.RunName), shellQuote(sqsh))

	run := append(append([]string{}, bin...), "start")
	run = append(run, r.cfg.Options...)
	run = append(run, opts...)
	run = append(run, "--mount", filepath.Join(spec.Dir, "enroot.env")+" /etc/environment none x-create=file,bind,ro")
	for _, m := range spec.Mounts {
		fl := "x-create=auto,rbind"
		if m.ReadOnly {
			fl += ",ro"
		}
		run = append(run, "--mount", m.Source+" "+m.Target+" none "+fl)
	}
	run = append(run, "--mount", spec.Shim+" "+shim.BinaryPath+" none x-create=file,bind,ro",
		"--mount", spec.ShimDir+" "+shim.StateDir+" none x-create=dir,bind")
	if spec.TerminationFile != "" {
		run = append(run, "--mount", spec.TerminationFile+" "+spec.Container.TerminationMessagePath+" none x-create=file,bind")
	}
	run = append(run, mounts...)
	// The shim runs the container (its spec's argv is the command, or the image's /etc/rc).
	run = append(run, spec.RunName)
	run = append(run, shim.Entrypoint()...)
	return containerScript{
		Pull:  pull,
		Run:   spec.Launcher + shellJoin(run),
		After: fmt.Sprintf("%s remove --force %s >/dev/null 2>&1\n  return 0", e, shellQuote(spec.RunName)),
		Stop:  ":",
		Files: map[string][]byte{"enroot.env": envFile},
	}, nil
}
