package podman

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

const (
	// preExecDir is where the helper finds the script and leaves its exit code.
	preExecDir = "/.interlink-dispatcher"
	// defaultPreExecImage needs a POSIX sh and whatever tools the text uses.
	defaultPreExecImage = "busybox:latest"
)

// preExec runs the pod's pre-exec text, if it has one, in a helper container of the Podman pod (so in its
// network namespace, with NET_ADMIN for the mesh's interfaces and routes), and waits for the text to end.
// The helper stays up afterwards (and ends at once on the pod's stop: as PID 1 it needs its trap), so that what the text started in the background (a tunnel client, a mesh
// agent) lives as long as the pod. ok is false when the text failed (recorded on every container).
func (b *Backend) preExec(ctx context.Context, r *record) (ok bool, err error) {
	text := pod.PreExecText(r.Pod)
	if text == "" {
		return true, nil
	}
	uid := string(r.Pod.UID)
	dir := filepath.Join(b.podDir(uid), "pre-exec")
	rcFile := filepath.Join(dir, "rc")
	name := containerName(r.PodName, pod.PreExecContainer)
	ins, err := b.api.ContainerInspect(ctx, name)
	switch {
	case libpod.IsNotFound(err):
		if err := b.launchPreExec(ctx, r, name, dir, text); err != nil {
			return false, err
		}
	case err != nil:
		return false, err
	case !ins.State.Running:
		if _, statErr := os.Stat(rcFile); statErr != nil {
			// The helper died before the text ended (a resumed launch finds it so): start it again.
			_ = os.RemoveAll(dir)
			if err := b.api.ContainerRemove(ctx, name, true); err != nil {
				return false, err
			}
			if err := b.launchPreExec(ctx, r, name, dir, text); err != nil {
				return false, err
			}
		}
	}
	for {
		if data, err := os.ReadFile(rcFile); err == nil {
			rc, convErr := strconv.Atoi(strings.TrimSpace(string(data)))
			if convErr == nil && rc == 0 {
				return true, nil
			}
			b.failPreExec(r, pod.PreExecFailed(strings.TrimSpace(string(data))))
			return false, nil
		}
		ins, err := b.api.ContainerInspect(ctx, name)
		if err != nil {
			return false, err
		}
		if !ins.State.Running && !ins.State.FinishedAt.IsZero() {
			if _, err := os.Stat(rcFile); err != nil {
				b.failPreExec(r, fmt.Sprintf("the pre-exec helper ended (exit code %d) before the pod's pre-exec commands did", ins.State.ExitCode))
				return false, nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// launchPreExec writes the script, makes the helper's image present, and creates and starts the helper.
// Failures that are not the engine's absence are recorded on every container (nil error, nothing started).
func (b *Backend) launchPreExec(ctx context.Context, r *record, name, dir, text string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.failPreExec(r, "cannot write the pre-exec script: "+err.Error())
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, "pre-exec.sh"), []byte(text+"\n"), 0o600); err != nil {
		b.failPreExec(r, "cannot write the pre-exec script: "+err.Error())
		return nil
	}
	helper := &v1.Container{Name: pod.PreExecContainer, Image: defaultPreExecImage, ImagePullPolicy: v1.PullIfNotPresent}
	image := normalizeImage(helper.Image)
	if _, f, err := b.pullImage(ctx, helper, image); err != nil {
		return err
	} else if f != nil {
		b.failPreExec(r, "pre-exec helper: "+f.Message)
		return nil
	}
	spec := libpod.ContainerSpec{
		Name: name, Pod: r.PodName, Image: image,
		Labels: pod.ContainerLabels(r.Pod, b.env.Instance, b.env.Name, pod.PreExecContainer, pod.RolePreExec),
		Entrypoint: []string{"sh", "-c", "sh " + preExecDir + "/pre-exec.sh; echo $? > " + preExecDir + "/rc.tmp && mv " +
			preExecDir + "/rc.tmp " + preExecDir + "/rc; trap 'exit 0' TERM; sleep 2147483647 & wait"},
		Mounts:          []libpod.Mount{{Type: "bind", Source: dir, Destination: preExecDir, Options: []string{"rbind", "rw"}}},
		CapAdd:          []string{"CAP_NET_ADMIN", "CAP_NET_RAW"},
		RestartPolicy:   "no",
		ImageVolumeMode: "ignore",
	}
	if _, err := b.api.ContainerCreate(ctx, spec); err != nil {
		if isTransient(err) {
			return err
		}
		b.failPreExec(r, "cannot create the pre-exec helper: "+err.Error())
		return nil
	}
	if err := b.api.ContainerStart(ctx, name); err != nil {
		if isTransient(err) {
			return err
		}
		b.failPreExec(r, "cannot start the pre-exec helper: "+err.Error())
	}
	return nil
}

// failPreExec records the same failure on every container of the pod: none can start.
func (b *Backend) failPreExec(r *record, message string) {
	for _, c := range allContainers(r.Pod) {
		b.fail(r, c.Name, failure{Reason: pod.ReasonPreExecError, Message: message})
	}
}
