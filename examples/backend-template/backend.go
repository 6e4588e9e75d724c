package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/keyed"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Version is the backend's version, reported by Describe; main sets it from the build.
var Version = "dev"

// Kind is the backend's kind, as Describe names it.
const Kind = "process"

// Config is the backend's own section of the dispatcher config (backends[].config), snake_case keys.
type Config struct {
	// MaxPods is how many pods the backend accepts at once, reported as its pod capacity (default 100).
	MaxPods int64 `json:"max_pods"`
	// Shell is the only command a container may start with when set (e.g. "sh"): a site that wants the
	// template to run only shell scripts says so here. Empty: any command.
	Shell string `json:"shell"`
}

// capabilities are the pod features this backend honours: the dispatcher refuses (422) any pod using another.
var capabilities = backend.Capabilities{
	Features: []string{
		backend.FeatureInitContainers,     // run one after the other before the containers
		backend.FeatureMultipleContainers, // run side by side
		backend.FeatureSharedLocalhost,    // every process is on the host's network
		backend.FeatureTerminationGrace,   // SIGTERM, then SIGKILL after the grace period
	},
}

// Backend runs pods as process trees on this host. Everything about a pod is in its directory,
// <data_dir>/pods/<uid>: the record (pod.json), the runner's pid, and per container a log and a state file.
type Backend struct {
	env   backend.Env
	cfg   Config
	dir   string
	locks keyed.Mutex // one create or delete of a pod UID at a time
	self  string      // this binary, started again as each pod's runner

	reg     *prometheus.Registry
	created prometheus.Counter
	deleted prometheus.Counter
}

// New is the backend's factory, given to backend.Serve.
func New(_ context.Context, env backend.Env) (backend.Backend, error) {
	cfg := Config{MaxPods: 100}
	dec := json.NewDecoder(bytes.NewReader(env.Config))
	dec.DisallowUnknownFields()
	if len(bytes.TrimSpace(env.Config)) > 0 {
		if err := dec.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("backends[%s].config: %v (the keys are max_pods and shell)", env.Name, err)
		}
	}
	if cfg.MaxPods <= 0 {
		return nil, fmt.Errorf("backends[%s].config.max_pods: %d is not a pod count; give a number above 0", env.Name, cfg.MaxPods)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the backend's own binary to run pods with: %w", err)
	}
	b := &Backend{env: env, cfg: cfg, dir: filepath.Join(env.DataDir, "pods"), self: self, reg: prometheus.NewRegistry(),
		created: prometheus.NewCounter(prometheus.CounterOpts{Name: "interlink_backend_process_pods_created_total",
			Help: "Pods whose runner this backend started."}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "interlink_backend_process_pods_deleted_total",
			Help: "Pods this backend stopped and removed."}),
	}
	b.reg.MustRegister(b.created, b.deleted)
	if err := os.MkdirAll(b.dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot make the pod directory %s: %w", b.dir, err)
	}
	return b, nil
}

// Describe names the backend and declares what it honours.
func (b *Backend) Describe(context.Context) (backend.Description, error) {
	return backend.Description{Name: Kind, Version: Version, ProtocolVersion: backend.ProtocolVersion,
		Engine: "local processes on " + runtime.GOOS + "/" + runtime.GOARCH, Capabilities: capabilities}, nil
}

// Capacity is the host's CPUs and memory and the configured pod count. It reads /proc/meminfo every time:
// the health check of a backend whose "engine" is the host itself.
func (b *Backend) Capacity(context.Context) (backend.Capacity, error) {
	mem, err := memTotal()
	if err != nil {
		return backend.Capacity{}, backend.Unavailable("cannot read the host's memory: %v", err)
	}
	cpu := int64(runtime.NumCPU()) * 1000
	pods := b.cfg.MaxPods
	return backend.Capacity{CPUMilli: &cpu, MemoryBytes: &mem, Pods: &pods}, nil
}

func memTotal() (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("MemTotal %q is not a number", f[1])
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("/proc/meminfo has no MemTotal")
}

// record is a pod's pod.json: what Create was given and made of it.
type record struct {
	Pod      v1.Pod    `json:"pod"`
	RemoteID string    `json:"remote_id"`
	Created  time.Time `json:"created"`
	Plan     plan      `json:"plan"`
}

// plan is what the runner runs: init containers one after the other, then the containers side by side.
type plan struct {
	Init       []proc `json:"init"`
	Containers []proc `json:"containers"`
}

// proc is one container as a process.
type proc struct {
	Name string   `json:"name"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
}

func (b *Backend) podDir(uid string) string { return filepath.Join(b.dir, uid) }

// Create validates the pod, writes its record and starts its runner. A second Create of a recorded UID
// answers the recorded remote id and starts nothing.
func (b *Backend) Create(_ context.Context, req backend.CreateRequest) (backend.CreateResult, error) {
	p := req.Pod
	if err := pod.CheckUID(string(p.UID)); err != nil {
		return backend.CreateResult{}, err
	}
	if err := pod.Validate(p, capabilities, b.env.Name); err != nil {
		return backend.CreateResult{}, err
	}
	uid := string(p.UID)
	defer b.locks.Lock(uid)()
	dir := b.podDir(uid)
	if rec, err := readRecord(dir); err == nil {
		return backend.CreateResult{RemoteID: rec.RemoteID}, nil
	}
	pl, err := b.plan(p, pod.NewObjects(req.Containers), dir)
	if err != nil {
		return backend.CreateResult{}, err
	}
	if n := b.count(); int64(n) >= b.cfg.MaxPods {
		return backend.CreateResult{}, backend.Unavailable("backend %q runs %d pods, its max_pods; retry when one has ended", b.env.Name, n)
	}
	if err := os.MkdirAll(filepath.Join(dir, "work"), 0o700); err != nil {
		return backend.CreateResult{}, fmt.Errorf("cannot make the pod directory: %w", err)
	}
	rec := record{Pod: *p, RemoteID: "process-" + uid, Created: time.Now().UTC(), Plan: pl}
	if err := writeJSONFile(filepath.Join(dir, "pod.json"), rec); err != nil {
		os.RemoveAll(dir)
		return backend.CreateResult{}, fmt.Errorf("cannot record the pod: %w", err)
	}
	if err := b.startRunner(dir); err != nil {
		os.RemoveAll(dir)
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "cannot start the pod's runner: %v", err)
	}
	b.created.Inc()
	slog.Info("pod started", "pod_uid", uid, "namespace", p.Namespace, "name", p.Name)
	return backend.CreateResult{RemoteID: rec.RemoteID}, nil
}

// plan turns each container into a process: command and args with $(VAR) expanded, its env resolved
// (fieldRefs, configMap and secret keys), its working directory the pod's work directory unless it names one.
func (b *Backend) plan(p *v1.Pod, objs *pod.Objects, dir string) (plan, error) {
	var pl plan
	var problems []string
	one := func(path string, c *v1.Container) proc {
		env, err := pod.ResolveEnv(p, c, objs)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s.env: %v", path, err))
		}
		lookup := pod.EnvLookup(env)
		argv := append(pod.ExpandAll(c.Command, lookup), pod.ExpandAll(c.Args, lookup)...)
		switch {
		case len(c.Command) == 0:
			problems = append(problems, path+".command: a process has no image entrypoint to fall back on; give the command to run")
		case b.cfg.Shell != "" && c.Command[0] != b.cfg.Shell:
			problems = append(problems, fmt.Sprintf("%s.command: backend %q runs only %q (config shell)", path, b.env.Name, b.cfg.Shell))
		}
		wd := filepath.Join(dir, "work")
		if c.WorkingDir != "" {
			wd = c.WorkingDir
		}
		base := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + filepath.Join(dir, "work"),
			"HOSTNAME=" + p.Name}
		return proc{Name: c.Name, Argv: argv, Env: append(base, pod.EnvList(env)...), Dir: wd}
	}
	for i := range p.Spec.InitContainers {
		pl.Init = append(pl.Init, one(fmt.Sprintf("spec.initContainers[%d]", i), &p.Spec.InitContainers[i]))
	}
	for i := range p.Spec.Containers {
		pl.Containers = append(pl.Containers, one(fmt.Sprintf("spec.containers[%d]", i), &p.Spec.Containers[i]))
	}
	if len(problems) > 0 {
		return plan{}, backend.Invalid("%s", strings.Join(problems, "; "))
	}
	return pl, nil
}

// startRunner starts the pod's runner in a session of its own, so that it outlives this backend process (a
// restarted backend finds it by its pid file) and Delete can signal the whole process tree at once.
func (b *Backend) startRunner(dir string) error {
	out, err := os.OpenFile(filepath.Join(dir, "runner.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(b.self, runPodCommand, dir)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "runner.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	go cmd.Wait() // reaped here while this process lives; by init once it is gone
	return nil
}

// count is the number of pod directories.
func (b *Backend) count() int {
	entries, _ := os.ReadDir(b.dir)
	return len(entries)
}

// Delete stops the pod's process tree (SIGTERM, SIGKILL after the grace period) and removes its directory.
// An unknown pod is deleted already.
func (b *Backend) Delete(ctx context.Context, req backend.DeleteRequest) error {
	uid := string(req.Pod.UID)
	if err := pod.CheckUID(uid); err != nil {
		return err
	}
	defer b.locks.Lock(uid)()
	dir := b.podDir(uid)
	unlock, err := pod.LockDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer unlock()
	// The whole group, even when the runner is gone: a container process may outlive it.
	if pgid, _ := runnerPID(dir); pgid > 0 && groupAlive(pgid) {
		syscall.Kill(-pgid, syscall.SIGTERM)
		if !waitGroupGone(ctx, pgid, req.GracePeriod) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			if !waitGroupGone(context.Background(), pgid, 10*time.Second) {
				return backend.Errorf(backend.KindInternal, "the processes of pod %s did not end after SIGKILL", uid)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("cannot remove the pod directory: %w", err)
	}
	b.deleted.Inc()
	slog.Info("pod deleted", "pod_uid", uid, "grace", req.GracePeriod)
	return nil
}

// Status reads each pod's files: one call for the whole batch, never an engine round trip.
func (b *Backend) Status(_ context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	out := make([]interlink.PodStatus, 0, len(pods))
	for _, p := range pods {
		if pod.ValidPodUID(string(p.UID)) != nil {
			out = append(out, pod.NotFoundStatus(p, ""))
			continue
		}
		dir := b.podDir(string(p.UID))
		rec, err := readRecord(dir)
		if err != nil {
			out = append(out, pod.NotFoundStatus(p, ""))
			continue
		}
		out = append(out, statusOf(p, dir, rec))
	}
	return out, nil
}

// statusOf is a recorded pod's status, with p's identity and containers.
func statusOf(p *v1.Pod, dir string, rec record) interlink.PodStatus {
	st := pod.NewPodStatus(p, rec.RemoteID)
	_, alive := runnerPID(dir)
	one := func(c *v1.Container) v1.ContainerStatus {
		s, err := readState(dir, c.Name)
		switch {
		case err != nil && alive:
			return pod.Waiting(c, pod.ReasonContainerCreating, "its turn has not come yet", 0)
		case err != nil:
			return pod.Terminated(c, pod.Termination{ExitCode: pod.NotFoundExitCode, Reason: pod.ReasonUnknown,
				Message: "the pod's runner is gone: its processes were killed outside the backend", FinishedAt: rec.Created}, 0)
		case s.NotStarted != "":
			return pod.NotStarted(c, s.NotStarted, s.FinishedAt)
		case s.FinishedAt.IsZero() && alive:
			cs := pod.Running(c, s.StartedAt, 0)
			cs.ContainerID = fmt.Sprintf("process://%d", s.PID)
			return cs
		case s.FinishedAt.IsZero():
			return pod.Terminated(c, pod.Termination{ExitCode: pod.NotFoundExitCode, Reason: pod.ReasonUnknown,
				Message: "the process is gone: it was killed outside the backend", StartedAt: s.StartedAt,
				FinishedAt: s.StartedAt}, 0)
		default:
			return pod.Terminated(c, pod.Termination{ExitCode: s.ExitCode, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt,
				ContainerID: fmt.Sprintf("process://%d", s.PID)}, 0)
		}
	}
	for i := range p.Spec.InitContainers {
		st.InitContainers = append(st.InitContainers, one(&p.Spec.InitContainers[i]))
	}
	for i := range p.Spec.Containers {
		st.Containers = append(st.Containers, one(&p.Spec.Containers[i]))
	}
	return st
}

// List finds every pod from its directory.
func (b *Backend) List(context.Context) ([]backend.PodRecord, error) {
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, backend.Unavailable("cannot read the pod directory %s: %v", b.dir, err)
	}
	var out []backend.PodRecord
	for _, e := range entries {
		dir := filepath.Join(b.dir, e.Name())
		rec, err := readRecord(dir)
		if err != nil {
			continue // being created or removed
		}
		p := &rec.Pod
		out = append(out, backend.PodRecord{UID: string(p.UID), Namespace: p.Namespace, Name: p.Name, RemoteID: rec.RemoteID,
			Phase: pod.NextPhase(p, statusOf(p, dir, rec)), Created: rec.Created})
	}
	return out, nil
}

// Metrics are the backend's own counters.
func (b *Backend) Metrics(context.Context) ([]*dto.MetricFamily, error) { return b.reg.Gather() }

// hasContainer tells whether the recorded pod has a container (init or not) of that name.
func (rec record) hasContainer(name string) bool {
	return slices.ContainsFunc(append(append([]proc{}, rec.Plan.Init...), rec.Plan.Containers...),
		func(p proc) bool { return p.Name == name })
}

func readRecord(dir string) (record, error) {
	var rec record
	data, err := os.ReadFile(filepath.Join(dir, "pod.json"))
	if err != nil {
		return rec, err
	}
	return rec, json.Unmarshal(data, &rec)
}

// writeJSONFile writes v to path through a rename, so that a reader never sees half a file.
func writeJSONFile(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// runnerPID is the pid (and process group) of the pod's runner, and whether the runner still runs.
func runnerPID(dir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dir, "runner.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, processAlive(pid)
}

// processAlive tells whether pid runs and is not a zombie (a runner that ended before this backend process
// reaped it).
func processAlive(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// groupAlive tells whether a process other than a zombie is in process group pgid: the runner, or a
// container process that outlived it.
func groupAlive(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses: read after the last ')'.
		rest := string(data[bytes.LastIndexByte(data, ')')+1:])
		f := strings.Fields(rest)
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}

// waitGroupGone waits up to d (and ctx) for process group pgid to be gone.
func waitGroupGone(ctx context.Context, pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !groupAlive(pgid) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
