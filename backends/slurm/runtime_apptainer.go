package slurm

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// apptainerRuntime runs each container with Apptainer (or Singularity) inside the job, as interLink's
// reference SLURM plugin does: `exec` when the pod sets command (which replaces the image's entrypoint),
// `run` otherwise (the image's runscript gets the args); default options --nv --no-eval --containall; the
// pod's slurm-job.vk.io/singularity-options and singularity-mounts are added. The environment comes from an
// --env-file that Apptainer reads without evaluating it. Apptainer always runs containers with no_new_privs,
// so allowPrivilegeEscalation: false holds without an option.
type apptainerRuntime struct{ cfg RuntimeConfig }

func (r *apptainerRuntime) Name() string { return RuntimeApptainer }

func (r *apptainerRuntime) Check(spec *containerSpec) error {
	for _, m := range spec.Mounts {
		if err := bindPathOK(spec, m, "Apptainer"); err != nil {
			return err
		}
	}
	if err := pullNeverNeedsPath(spec, "Apptainer"); err != nil {
		return err
	}
	if spec.RunAsGroup != nil {
		return fmt.Errorf("container %q securityContext.runAsGroup: Apptainer runs containers as the job's user and group", spec.Name)
	}
	return sameUserAsJob(spec, "Apptainer")
}

func (r *apptainerRuntime) Render(spec *containerSpec) (containerScript, error) {
	bin, err := splitWords(r.cfg.Path)
	if err != nil || len(bin) == 0 {
		return containerScript{}, fmt.Errorf("apptainer.path %q is not a command line", r.cfg.Path)
	}
	opts, err := annotationWords(spec.Pod, AnnotationSingularityOptions)
	if err != nil {
		return containerScript{}, err
	}
	mounts, err := annotationWords(spec.Pod, AnnotationSingularityMounts)
	if err != nil {
		return containerScript{}, err
	}
	envFile, err := shellEnvFile(spec.Env)
	if err != nil {
		return containerScript{}, err
	}
	// The shim runs the container (its spec's argv is the command, or the image's runscript).
	run := append(append([]string{}, bin...), "exec")
	run = append(run, r.cfg.Options...)
	run = append(run, opts...)
	for _, m := range spec.Mounts {
		b := m.Source + ":" + m.Target
		if m.ReadOnly {
			b += ":ro"
		}
		run = append(run, "--bind", b)
	}
	run = append(run, "--bind", spec.Shim+":"+shim.BinaryPath+":ro", "--bind", spec.ShimDir+":"+shim.StateDir)
	if spec.TerminationFile != "" {
		run = append(run, "--bind", spec.TerminationFile+":"+spec.Container.TerminationMessagePath)
	}
	run = append(run, mounts...)
	run = append(run, "--env-file", filepath.Join(spec.Dir, "env"))
	// Apptainer applies these through cgroups, so that a container's own limits hold inside the job.
	if spec.Resources.CPULimitNano > 0 {
		run = append(run, "--cpus", cpuString(spec.Resources.CPULimitNano))
	}
	if spec.Resources.MemoryLimitBytes > 0 {
		run = append(run, "--memory", strconv.FormatInt(spec.Resources.MemoryLimitBytes, 10))
	}
	if spec.WorkingDir != "" {
		run = append(run, "--pwd", spec.WorkingDir)
	}
	run = append(run, spec.Image)
	run = append(run, shim.Entrypoint()...)
	return containerScript{
		Pull:  ":",
		Run:   spec.Launcher + shellJoin(run),
		After: "return 0",
		Stop:  ":",
		Files: map[string][]byte{"env": envFile},
	}, nil
}
