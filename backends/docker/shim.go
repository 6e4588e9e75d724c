package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// Every pod container runs under the shim (shared/shim) as its PID 1: it runs the command, the probes and
// the lifecycle hooks from inside the container, the same way on every backend, and leaves what it saw in
// a state directory per run that Status reads.

// shimStopMargin is added to the grace period when the engine stops a container: the shim itself runs
// preStop, sends the stop signal and kills the command when the grace period is over, then exits.
const shimStopMargin = 5

// findShim returns the shim binary: the configured one, else interlink-shim beside the backend's own
// executable.
func findShim(configured string) (string, error) {
	path := configured
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("cannot find the backend's own executable to look for interlink-shim beside it: %v", err)
		}
		path = filepath.Join(filepath.Dir(exe), "interlink-shim")
	}
	if err := checkStatic(path); err != nil {
		return "", fmt.Errorf("the shim binary every container runs under is not usable (%v); "+
			"build it beside the backend (make build) or set shim to its path", err)
	}
	return path, nil
}

// shimDir is the host state directory of one run of a pod's container.
func (b *Backend) shimDir(uid, container string, attempt int) string {
	return filepath.Join(b.podDir(uid), "shim", container, strconv.Itoa(attempt))
}

// shimSpec builds the shim's spec for container c of p, with command and args already expanded.
func shimSpec(p *v1.Pod, c *v1.Container, argv []string) shim.Spec {
	return shim.ContainerSpec(p, c, argv)
}

// checkShimSpec refuses at Create what the shim could not carry out (a probe naming a port the container
// does not declare, a tcpSocket hook, an unknown stop signal).
func checkShimSpec(p *v1.Pod, c *v1.Container) error {
	if err := shimSpec(p, c, []string{"placeholder"}).Validate(); err != nil {
		return fmt.Errorf("container %q: %v", c.Name, err)
	}
	return nil
}

// prepareShim resolves the run's command line from the container and its image, writes the shim's spec
// into the run's state directory, and returns the entrypoint and mounts that run the container under the
// shim.
func (b *Backend) prepareShim(ctx context.Context, p *v1.Pod, c *v1.Container, attempt int, command, args []string) ([]string, []mount.Mount, error) {
	img, err := b.inspectImage(ctx, c.Image, imageConfigAge)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read the configuration of image %q: %v", c.Image, err)
	}
	var entrypoint, cmd []string
	if img.Config != nil {
		entrypoint, cmd = img.Config.Entrypoint, img.Config.Cmd
	}
	expanded := c.DeepCopy()
	expanded.Command, expanded.Args = command, args
	argv, err := shim.ResolveArgv(expanded, entrypoint, cmd)
	if err != nil {
		return nil, nil, err
	}
	dir := b.shimDir(string(p.UID), c.Name, attempt)
	if err := shim.WriteSpec(dir, shimSpec(p, c, argv)); err != nil {
		return nil, nil, err
	}
	mounts := []mount.Mount{
		{Type: mount.TypeBind, Source: b.shimPath, Target: shim.BinaryPath, ReadOnly: true},
		{Type: mount.TypeBind, Source: dir, Target: shim.StateDir},
	}
	if pod.BindsTerminationFile(c) {
		// A fresh file for each run, as the kubelet binds one (see terminationMessage).
		path, err := shim.PrepareTerminationFile(dir)
		if err != nil {
			return nil, nil, err
		}
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: path, Target: c.TerminationMessagePath})
	}
	return shim.Entrypoint(), mounts, nil
}

// terminationMessage is the termination message of run, an ended run of c that ended with t (see
// pod.TerminationMessage): what the run wrote to its termination file, or the end of its log when c's
// policy falls back to it. An ended run's message never changes: it is made once a run (unless reading
// failed) and kept beside the run's inspect, so that a status of a finished pod reads no file.
func (b *Backend) terminationMessage(ctx context.Context, c *v1.Container, run container.Summary, t pod.Termination) string {
	if !pod.BindsTerminationFile(c) {
		return ""
	}
	if msg, ok := b.inspects.message(run.ID); ok {
		return msg
	}
	file, err := shim.ReadTerminationFile(b.shimDir(run.Labels[pod.LabelPodUID], c.Name, attemptOf(run)))
	failed := err != nil
	msg := pod.TerminationMessage(c, t.ExitCode, file, err, func() ([]byte, error) {
		tail, err := b.logTail(ctx, run.ID)
		failed = failed || err != nil
		return tail, err
	})
	if !failed {
		b.inspects.setMessage(run.ID, msg)
	}
	return msg
}

// logTail is the end of an ended run's log, stdout and stderr together.
func (b *Backend) logTail(ctx context.Context, id string) ([]byte, error) {
	start := time.Now()
	rc, err := b.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(pod.MaxTerminationLogLines)})
	b.metrics.observe("container_logs", start, err)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, io.LimitReader(rc, 1<<20)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// shimState reads what the shim of one run recorded; ok is false when there is nothing (yet).
func (b *Backend) shimState(uid, container string, attempt int) (shim.State, bool) {
	st, err := shim.ReadState(b.shimDir(uid, container, attempt))
	return st, err == nil
}

// stopSeconds is the engine's stop timeout for a grace period: the shim needs the whole grace period,
// plus a margin to exit.
func stopSeconds(graceSeconds float64) int {
	return int(graceSeconds+0.999) + shimStopMargin
}
