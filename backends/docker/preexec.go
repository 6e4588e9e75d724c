package docker

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/strslice"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// The pre-exec helper's own script and the line it prints once the text has run.
const (
	preExecScript = "pre-exec.sh"
	preExecMarker = "__interlink_dispatcher_pre_exec_done__"
)

// preExec runs the pod's pre-exec text in a helper container of the pod's network namespace, and reports
// whether the containers may start. The helper stays up after the text has run, so that what it started
// in the background (a tunnel client, a mesh agent) lives as long as the pod.
func (r *runner) preExec(pc *podContainers, pauseID string) (ready bool, wait time.Duration, err error) {
	text := pod.PreExecText(r.rec.Pod)
	if text == "" || r.preExecDone {
		return true, 0, nil
	}
	runs := pc.runs[pod.PreExecContainer]
	if len(runs) == 0 {
		if !r.act() {
			return false, 0, errUnsure
		}
		return false, r.launchPreExec(text, pauseID), nil
	}
	last := runs[len(runs)-1]
	done, rc, err := r.preExecResult(last.ID)
	if err != nil {
		return false, 0, err
	}
	if done && rc == 0 {
		r.preExecDone = true
		r.b.clearErrors(r.rec.Pod)
		return true, 0, nil
	}
	if done || last.State != "running" {
		code := ""
		if done {
			code = strconv.Itoa(rc)
		}
		r.failAll(pod.ReasonPreExecError, pod.PreExecFailed(code))
		return false, pollInterval, nil
	}
	return false, 500 * time.Millisecond, nil
}

// launchPreExec writes the text beside the pod's volumes and starts the helper; it returns the wait
// before looking again.
func (r *runner) launchPreExec(text, pauseID string) time.Duration {
	ctx, p := r.ctx, r.rec.Pod
	script := filepath.Join(r.b.podDir(string(p.UID)), preExecScript)
	if err := os.WriteFile(script, []byte(text+"\n"), 0o600); err != nil {
		r.failAll(pod.ReasonCreateContainerError, "cannot write the pre-exec script: "+err.Error())
		return pollInterval
	}
	helper := &v1.Container{Name: pod.PreExecContainer, Image: r.b.cfg.PreExecImage, ImagePullPolicy: v1.PullIfNotPresent}
	if reason, msg := r.b.ensureImage(ctx, helper); reason != "" {
		r.failAll(reason, "pre-exec helper: "+msg)
		return pollInterval
	}
	labels := pod.ContainerLabels(p, r.b.env.Instance, r.b.env.Name, pod.PreExecContainer, pod.RolePreExec)
	labels[labelAttempt] = "0"
	cfg := &container.Config{
		Image:  helper.Image,
		Labels: labels,
		Entrypoint: strslice.StrSlice{"sh", "-c", `sh /.interlink-dispatcher/pre-exec.sh; rc=$?; echo "` + preExecMarker +
			` $rc"; exec sleep 2147483647`},
	}
	hc := &container.HostConfig{
		NetworkMode: container.NetworkMode("container:" + pauseID),
		IpcMode:     container.IpcMode("container:" + pauseID),
		CapAdd:      preExecCapabilities(p),
		LogConfig:   container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m"}},
		Mounts: []mount.Mount{{Type: mount.TypeBind, Source: script, Target: "/.interlink-dispatcher/pre-exec.sh",
			ReadOnly: true}},
	}
	unlock, ok := r.lockRecorded()
	if !ok {
		return 0 // the next step ends the runner
	}
	cctx, cancel := createContext(ctx)
	resp, err := r.b.cli.ContainerCreate(cctx, cfg, hc, &network.NetworkingConfig{}, nil, containerName(p, "pre-exec", 0))
	cancel()
	unlock()
	if err != nil {
		r.failAll(pod.ReasonCreateContainerError, "cannot create the pre-exec helper: "+err.Error())
		return pollInterval
	}
	if errors.Is(r.start(resp.ID), errEngineStopping) {
		return engineStoppingRetry
	}
	return 500 * time.Millisecond
}

// preExecResult reads the helper's log for the line it prints once the text has run, with its exit code.
func (r *runner) preExecResult(id string) (done bool, rc int, err error) {
	rcl, err := r.b.cli.ContainerLogs(r.ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return false, 0, err
	}
	defer rcl.Close()
	sc := bufio.NewScanner(rcl)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if i := strings.Index(sc.Text(), preExecMarker+" "); i >= 0 {
			n, convErr := strconv.Atoi(strings.TrimSpace(sc.Text()[i+len(preExecMarker)+1:]))
			if convErr == nil {
				return true, n, nil
			}
		}
	}
	return false, 0, nil
}

// failAll records the same failure on every container of the pod: none can start.
func (r *runner) failAll(reason, message string) {
	p := r.rec.Pod
	for _, list := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range list {
			r.b.setError(p, c.Name, preExecAttempt, reason, message)
		}
	}
}

// preExecAttempt marks the failures failAll records: they concern no run of the containers themselves.
const preExecAttempt = -1

// clearErrors forgets the failures failAll recorded, and only those.
func (b *Backend) clearErrors(p *v1.Pod) {
	st := b.readState(p)
	for name, e := range st.Errors {
		if e.Attempt == preExecAttempt {
			b.setError(p, name, preExecAttempt, "", "")
		}
	}
}

// stopHelpers stops the pre-exec helper of a finished pod.
func (b *Backend) stopHelpers(ctx context.Context, pc *podContainers) {
	timeout := 2
	for _, run := range pc.runs[pod.PreExecContainer] {
		if run.State == "running" {
			_ = b.cli.ContainerStop(ctx, run.ID, container.StopOptions{Timeout: &timeout})
		}
	}
}

// preExecCapabilities are what the pre-exec helper is given: NET_ADMIN and NET_RAW, for the mesh bootstrap
// that configures interfaces and routes of the pod's own network namespace, but nothing for a hostNetwork
// pod, whose namespace is the host's: there they would act on the host's network, which no policy granted.
func preExecCapabilities(p *v1.Pod) []string {
	if p.Spec.HostNetwork {
		return nil
	}
	return []string{"NET_ADMIN", "NET_RAW"}
}
