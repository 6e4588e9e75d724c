package slurm

import (
	"fmt"
	"path/filepath"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// noneRuntime runs a container's command directly on the node, for sites without any container runtime. The
// image is not used, so a pod that needs it (no command of its own, volumes to mount, another user) is refused.
type noneRuntime struct{}

func (noneRuntime) Name() string { return RuntimeNone }

func (noneRuntime) Check(spec *containerSpec) error {
	switch {
	case len(spec.Command) == 0:
		return fmt.Errorf("container %q: runtime none runs the container's command on the node without its image %q; the container must set command", spec.Name, spec.Container.Image)
	case len(spec.Mounts) > 0:
		return fmt.Errorf("container %q volumeMounts: runtime none has no container to mount volumes into; use a container runtime", spec.Name)
	case spec.RunAsGroup != nil:
		return fmt.Errorf("container %q securityContext.runAsGroup: runtime none runs commands as the job's user", spec.Name)
	case spec.Container.TerminationMessagePath != "" && spec.Container.TerminationMessagePath != pod.DefaultTerminationMessagePath:
		return fmt.Errorf("container %q terminationMessagePath: runtime none has no container file system to put %s in; use a container runtime", spec.Name, spec.Container.TerminationMessagePath)
	}
	return sameUserAsJob(spec, "runtime none")
}

func (noneRuntime) Render(spec *containerSpec) (containerScript, error) {
	envFile, err := shellEnvFile(spec.Env)
	if err != nil {
		return containerScript{}, err
	}
	// The shim runs the command (and the pod's working directory, probes and hooks) on the node; not being
	// PID 1, it becomes a subreaper and ends what the command left behind.
	cmd := []string{spec.Shim, filepath.Join(spec.ShimDir, shim.SpecFile)}
	if spec.NoNewPrivileges {
		// util-linux's setpriv sets no_new_privs and runs the command under it.
		cmd = append([]string{"setpriv", "--no-new-privs"}, cmd...)
	}
	// The env file is sourced with every variable exported: the values are single-quoted, so sourcing only
	// assigns them, and the command then sees them as its environment.
	run := fmt.Sprintf("( set -a; . %s; set +a; exec %s%s )", shellQuote(filepath.Join(spec.Dir, "env")), spec.Launcher, shellJoin(cmd))
	return containerScript{Pull: ":", Run: run, After: "return 0", Stop: ":", Files: map[string][]byte{"env": envFile}}, nil
}
