package slurm

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// podmanRuntime runs each container with `podman run` inside the job. Containers use the node's network, so
// the containers of a pod reach each other on localhost; their CPU and memory limits are applied by Podman,
// so a container over its memory limit is OOMKilled as in Kubernetes.
type podmanRuntime struct{ cfg RuntimeConfig }

func (r *podmanRuntime) Name() string { return RuntimePodman }

// podmanNoise matches what `podman run` itself prints when SLURM signals every process of a stopping job at
// once and the runc it starts to proxy a signal is killed: it is Podman's, not the container's.
const podmanNoise = `^time="[^"]*" level=(error|warning) msg="([Ee]rror )?[Ff]orwarding signal [0-9]+ to container `

func (r *podmanRuntime) Check(spec *containerSpec) error {
	for _, m := range spec.Mounts {
		if err := bindPathOK(spec, m, "Podman"); err != nil {
			return err
		}
	}
	return nil
}

func (r *podmanRuntime) Render(spec *containerSpec) (containerScript, error) {
	podman, err := splitWords(r.cfg.Path)
	if err != nil || len(podman) == 0 {
		return containerScript{}, fmt.Errorf("podman.path %q is not a command line", r.cfg.Path)
	}
	envFile, multi := literalEnvFile(spec.Env)
	files := map[string][]byte{"podman.env": envFile}
	run := append(append([]string{}, podman...), "run", "--name", spec.RunName, "--network", "host", "--pull", "never",
		"--env-file", filepath.Join(spec.Dir, "podman.env"))
	run = append(run, r.cfg.Options...)
	if len(multi) > 0 {
		f, err := shellEnvFile(multi)
		if err != nil {
			return containerScript{}, err
		}
		files["env-multi"] = f
		for _, e := range multi {
			// Podman takes a variable named without a value from its own environment: multi-line values,
			// which its env file cannot hold, reach it that way and never appear on a command line.
			run = append(run, "--env", e.Name)
		}
	}
	if spec.Resources.CPULimitNano > 0 {
		run = append(run, "--cpus", cpuString(spec.Resources.CPULimitNano))
	}
	if spec.Resources.MemoryLimitBytes > 0 {
		run = append(run, "--memory", strconv.FormatInt(spec.Resources.MemoryLimitBytes, 10)+"b")
	}
	for _, m := range spec.Mounts {
		v := m.Source + ":" + m.Target
		if m.ReadOnly {
			v += ":ro"
		}
		run = append(run, "--volume", v)
	}
	if spec.WorkingDir != "" {
		run = append(run, "--workdir", spec.WorkingDir)
	}
	if spec.RunAsUser != nil {
		u := strconv.FormatInt(*spec.RunAsUser, 10)
		if spec.RunAsGroup != nil {
			u += ":" + strconv.FormatInt(*spec.RunAsGroup, 10)
		}
		run = append(run, "--user", u)
	}
	if spec.NoNewPrivileges {
		run = append(run, "--security-opt", "no-new-privileges")
	}
	// The shim runs the container: its spec holds the argv (command, args and the image's defaults).
	run = append(run, "--volume", spec.Shim+":"+shim.BinaryPath+":ro", "--volume", spec.ShimDir+":"+shim.StateDir)
	if spec.TerminationFile != "" {
		run = append(run, "--volume", spec.TerminationFile+":"+spec.Container.TerminationMessagePath)
	}
	ep, _ := json.Marshal(shim.Entrypoint())
	run = append(run, "--entrypoint", string(ep), spec.Image)

	p := shellJoin(podman)
	name := shellQuote(spec.RunName)
	img := shellQuote(spec.Image)
	// Podman pulls and runs docker:// references (slurm-job.vk.io/image-root), but looks local images up
	// by their plain name only.
	local := shellQuote(strings.TrimPrefix(spec.Image, "docker://"))
	var body strings.Builder
	fmt.Fprintf(&body, "%s rm --force --ignore %s >/dev/null 2>&1\n", p, name)
	if len(multi) > 0 {
		fmt.Fprintf(&body, "  ( set -a; . %s; set +a; exec %s%s )", shellQuote(filepath.Join(spec.Dir, "env-multi")), spec.Launcher, shellJoin(run))
	} else {
		body.WriteString("  " + spec.Launcher + shellJoin(run))
	}
	var pull string
	switch spec.PullPolicy {
	case v1.PullNever:
		pull = fmt.Sprintf("%s image exists %s || { echo %s; return 3; }", p, local,
			shellQuote("image "+spec.Image+" is not present on the node and imagePullPolicy is Never"))
	case v1.PullIfNotPresent:
		pull = fmt.Sprintf("%s image exists %s || %s pull --quiet %s >/dev/null", p, local, p, img)
	default:
		pull = fmt.Sprintf("%s pull --quiet %s >/dev/null", p, img)
	}
	if spec.ArgvInJob {
		// Only the node's engine knows the image's ENTRYPOINT and CMD: the argv is written after the pull,
		// with the pod's args in place of CMD when it gives some.
		rest := "\"$cmd\""
		if spec.ArgsJSON != "" {
			rest = shellQuote(spec.ArgsJSON)
		}
		pull = fmt.Sprintf("%s || return $?\n  local ep cmd\n  ep=$(%s image inspect --format '{{json .Config.Entrypoint}}' %s) &&\n    cmd=$(%s image inspect --format '{{json .Config.Cmd}}' %s) || return 1\n  write_argv %s %s \"$ep\" %s",
			pull, p, local, p, local, shellQuote(spec.ShimDir), shellQuote(filepath.Join(spec.Dir, specTailFile)), rest)
	}
	after := fmt.Sprintf("local oom\n  oom=$(%s inspect --format '{{.State.OOMKilled}}' %s 2>/dev/null)\n  %s rm --force --ignore %s >/dev/null 2>&1\n",
		p, name, p, name)
	if spec.Resources.MemoryLimitBytes > 0 {
		// Podman 4.3 on cgroup v1 does not always notice the kernel's OOM kill; a container with a memory
		// limit killed by SIGKILL that nobody sent (the job is not stopping) was killed by it.
		after += "  if [ \"$oom\" != true ] && [ \"$1\" = 137 ] && [ -z \"$TERMINATING\" ]; then oom=true; fi\n"
	}
	after += "  if [ \"$oom\" = true ]; then echo OOMKilled; fi\n  return 0"
	stop := fmt.Sprintf("%s stop --time \"$GRACE\" %s >/dev/null 2>&1", p, name)
	return containerScript{Pull: pull, Run: body.String(), After: after, Stop: stop, Files: files}, nil
}
