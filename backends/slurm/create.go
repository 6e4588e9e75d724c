package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

var containerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Create implements backend.Backend: it validates the pod, writes its directory (volumes, env files, job
// script) and submits the job. It returns once sbatch has given the job id, which is the pod's remote id.
// A second Create of the same UID returns the recorded job id and submits nothing.
func (b *Backend) Create(ctx context.Context, req backend.CreateRequest) (backend.CreateResult, error) {
	p := req.Pod
	if p == nil {
		return backend.CreateResult{}, backend.Invalid("the create request has no pod")
	}
	uid := string(p.UID)
	if err := pod.CheckUID(uid); err != nil {
		return backend.CreateResult{}, err
	}
	if err := pod.Validate(p, capabilities(), b.env.Name); err != nil {
		return backend.CreateResult{}, err
	}
	start := time.Now()
	unlock := b.locks.Lock(uid)
	defer unlock()

	dir := b.podDir(uid)
	rec, err := readRecord(dir)
	switch {
	case err == nil && rec.JobID != "":
		return backend.CreateResult{RemoteID: rec.JobID}, nil
	case err == nil:
		// A record without a job id: an earlier Create stopped while sbatch ran, so a job may exist whose
		// id was never recorded.
		b.cancelByName(p)
	case !notExist(err):
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "cannot read the pod's directory: %w", err)
	}
	if err := pod.RemoveDir(dir); err != nil {
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "cannot clear the pod's directory: %w", err)
	}

	rec, err = b.prepare(p, req, dir)
	if err != nil {
		_ = pod.RemoveDir(dir)
		if backend.KindOf(err) == backend.KindInternal && !isBackendError(err) {
			return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "cannot write the pod's job: %w", err)
		}
		return backend.CreateResult{}, err
	}
	jobID, err := b.submit(ctx, p, dir)
	if err != nil {
		_ = pod.RemoveDir(dir)
		return backend.CreateResult{}, err
	}
	rec.JobID = jobID
	// The record with the job id is the one file of the create synced to disk (records.WriteFile): it is what
	// finds the pod's job again after a restart or a crash.
	if err := writeRecord(dir, rec); err != nil {
		// Without its record the job could never be found again: do not leave it running.
		_ = b.cancelJob(jobID)
		_ = pod.RemoveDir(dir)
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "cannot record job %s in the pod's directory, so it was cancelled: %w", jobID, err)
	}
	b.metrics.createSeconds.Observe(time.Since(start).Seconds())
	b.podLog(p).Info("pod submitted", "job_id", jobID, "runtime", rec.Runtime)
	return backend.CreateResult{RemoteID: jobID}, nil
}

func isBackendError(err error) bool {
	var be *backend.Error
	return errors.As(err, &be)
}

// prepare writes the pod's directory: volumes, per-container env and runtime files, the pre-exec text and
// the job script. Errors about the pod are KindInvalid sentences naming the field.
func (b *Backend) prepare(p *v1.Pod, req backend.CreateRequest, dir string) (*podRecord, error) {
	pl, err := b.planPod(p)
	if err != nil {
		return nil, invalid(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, containersDir), 0o755); err != nil {
		return nil, err
	}
	pl.dir = dir
	pl.objs = pod.NewObjects(req.Containers)
	if err := pod.ExpandSubPathExprs(p, pl.objs); err != nil {
		return nil, invalid(err)
	}
	if pl.vols, err = pod.MaterializeVolumes(p, pl.objs, dir); err != nil {
		return nil, invalid(err)
	}

	rec := &podRecord{UID: string(p.UID), Namespace: p.Namespace, Name: p.Name, Runtime: pl.rtName, Created: time.Now().UTC()}
	// The shim stops each container within its grace; the runtime's own stop waits 5 s more.
	pl.grace = shimGrace(pod.GracePeriod(p), time.Duration(b.cfg.KillWait))
	job := &jobScript{
		Bash: b.cfg.Bash, Dir: dir, UID: string(p.UID), Runtime: pl.rtName, Flags: pl.flags, Shim: b.cfg.Shim,
		Grace: pl.grace + 5*time.Second, KillWait: time.Duration(b.cfg.KillWait), Backoff: time.Duration(b.cfg.RestartBackoff),
		MaxBackoff: time.Duration(b.cfg.MaxRestartBackoff), PullRetries: b.cfg.PullRetries,
	}
	if pl.rtName == RuntimePodman {
		job.Noise = podmanNoise
	}
	for _, v := range pod.SizeLimitedDirs(pl.vols) {
		job.Limited = append(job.Limited, limitedDir{Path: v.HostPath, Limit: v.SizeLimitBytes,
			Message: fmt.Sprintf("Usage of EmptyDir volume %q exceeds the limit %q.", v.Name,
				resource.NewQuantity(v.SizeLimitBytes, resource.BinarySI).String())})
	}
	sort.Slice(job.Limited, func(i, j int) bool { return job.Limited[i].Path < job.Limited[j].Path })
	policy := pod.RestartPolicy(p)
	type entry struct {
		c    *v1.Container
		init bool
	}
	var all []entry
	for i := range p.Spec.InitContainers {
		all = append(all, entry{&p.Spec.InitContainers[i], true})
	}
	for i := range p.Spec.Containers {
		all = append(all, entry{&p.Spec.Containers[i], false})
	}
	for _, e := range all {
		sc, err := b.prepareContainer(pl, e.c, e.init)
		if err != nil {
			return nil, err
		}
		ctrPolicy := string(policy)
		if e.init {
			// Kubernetes retries a failed init container unless the pod never restarts.
			if policy != v1.RestartPolicyNever {
				ctrPolicy = string(v1.RestartPolicyOnFailure)
			}
			rec.InitContainers = append(rec.InitContainers, e.c.Name)
		} else {
			rec.Containers = append(rec.Containers, e.c.Name)
		}
		sc.Policy = ctrPolicy
		job.Containers = append(job.Containers, sc)
	}

	if err := writePodFiles(p, dir, job); err != nil {
		return nil, err
	}
	if err := writeDraftRecord(dir, rec); err != nil {
		return nil, err
	}
	if f, ok := findFlag(pl.flags, "uid"); ok {
		// The job runs as another user: it must own its directory (secrets stay readable by it alone).
		uid, _ := strconv.Atoi(f.Value)
		if err := chownTree(dir, uid); err != nil {
			return nil, fmt.Errorf("cannot give the pod's directory to user %d: %w", uid, err)
		}
	}
	return rec, nil
}

// invalid makes err, a sentence about the pod, a KindInvalid error.
func invalid(err error) error { return backend.Invalid("%v", err) }

// podPlan is what prepare decides once for the whole pod and what each container is prepared from.
type podPlan struct {
	pod         *v1.Pod
	rtName      string
	rt          containerRuntime
	flags       []sbatchFlag
	launcher    string
	imagePrefix string

	dir   string
	objs  *pod.Objects
	vols  map[string]*pod.Volume
	grace time.Duration
}

// planPod picks the pod's runtime, flavor, sbatch flags, MPI launcher and image prefix. Its errors are
// sentences about the pod.
func (b *Backend) planPod(p *v1.Pod) (*podPlan, error) {
	pl := &podPlan{pod: p}
	var err error
	if pl.rtName, err = b.cfg.podRuntime(p); err != nil {
		return nil, err
	}
	if pl.rt, err = b.cfg.newRuntime(pl.rtName); err != nil {
		return nil, err
	}
	if len(p.Spec.HostAliases) > 0 && pl.rtName != RuntimePodman {
		return nil, fmt.Errorf("spec.hostAliases: runtime %s keeps the node's /etc/hosts, which a pod cannot add to; hostAliases need runtime podman", pl.rtName)
	}
	if sc := p.Spec.SecurityContext; sc != nil && len(sc.SupplementalGroups) > 0 && pl.rtName != RuntimePodman {
		return nil, fmt.Errorf("spec.securityContext.supplementalGroups: runtime %s runs containers with the job's groups; supplementalGroups need runtime podman", pl.rtName)
	}
	for name := range pod.Sysctls(p) {
		switch {
		case pl.rtName != RuntimePodman:
			return nil, fmt.Errorf("spec.securityContext.sysctls: runtime %s runs containers in the node's namespaces, where a pod cannot set %s; sysctls need runtime podman", pl.rtName, name)
		case pod.IsNetSysctl(name):
			return nil, fmt.Errorf("spec.securityContext.sysctls: %s would change the node's network, which SLURM's containers share", name)
		}
	}
	flavor, err := b.cfg.resolveFlavor(p)
	if err != nil {
		return nil, err
	}
	if pl.flags, err = b.cfg.jobFlags(p, flavor); err != nil {
		return nil, err
	}
	if d := p.Spec.ActiveDeadlineSeconds; d != nil && *d > 0 {
		// SLURM's time limit is in minutes; the pod must not run longer than it asked.
		pl.flags = mergeFlags(pl.flags, []sbatchFlag{{Name: "time", Value: strconv.FormatInt((*d+59)/60, 10), HasValue: true}})
	}
	if pl.launcher, err = mpiLauncher(p); err != nil {
		return nil, err
	}
	switch pl.rtName {
	case RuntimeApptainer:
		pl.imagePrefix = *b.cfg.Apptainer.ImagePrefix
	case RuntimeEnroot:
		pl.imagePrefix = *b.cfg.Enroot.ImagePrefix
	case RuntimePodman:
		pl.imagePrefix = *b.cfg.Podman.ImagePrefix
	}
	if root, ok := p.Annotations[AnnotationImageRoot]; ok {
		pl.imagePrefix = root
	}
	return pl, nil
}

// prepareContainer checks and renders one container and writes its directory: the shim's spec and the
// runtime's files. The returned script container lacks only its restart policy.
func (b *Backend) prepareContainer(pl *podPlan, c *v1.Container, init bool) (scriptContainer, error) {
	p, dir := pl.pod, pl.dir
	if !containerName.MatchString(c.Name) || len(c.Name) > 63 {
		return scriptContainer{}, backend.Invalid("container name %q must be a DNS label", c.Name)
	}
	env, err := pod.ResolveEnv(p, c, pl.objs)
	if err != nil {
		return scriptContainer{}, backend.Invalid("container %q: %v", c.Name, err)
	}
	lookup := pod.EnvLookup(env)
	mounts, err := pod.Mounts(c, pl.vols, pod.PinDir(dir, c.Name))
	if err != nil {
		return scriptContainer{}, invalid(err)
	}
	cdir := filepath.Join(dir, containersDir, c.Name)
	spec := &containerSpec{
		Pod: p, Container: c, Init: init, Name: c.Name,
		RunName: "il-" + string(p.UID) + "-" + c.Name, Dir: cdir,
		Image: imageRef(c.Image, pl.imagePrefix), Command: pod.ExpandAll(c.Command, lookup),
		Args: pod.ExpandAll(c.Args, lookup), Env: env, Mounts: mounts,
		Resources: pod.ContainerResources(c), PullPolicy: pod.PullPolicy(c), WorkingDir: c.WorkingDir,
		Launcher: pl.launcher, Shim: b.cfg.Shim, ShimDir: filepath.Join(dir, shimDir, c.Name),
	}
	if pl.rtName == RuntimePodman && len(spec.Command) == 0 {
		spec.ArgvInJob = true
		if len(spec.Args) > 0 {
			a, _ := json.Marshal(spec.Args)
			spec.ArgsJSON = string(a)
		}
	}
	if pl.rtName != RuntimeNone && pod.BindsTerminationFile(c) {
		spec.TerminationFile = filepath.Join(spec.ShimDir, shim.TerminationFile)
	}
	if sc := c.SecurityContext; sc != nil {
		spec.RunAsUser, spec.RunAsGroup = sc.RunAsUser, sc.RunAsGroup
		spec.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	}
	if err := pl.rt.Check(spec); err != nil {
		return scriptContainer{}, invalid(err)
	}
	cs, err := pl.rt.Render(spec)
	if err != nil {
		return scriptContainer{}, invalid(err)
	}
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return scriptContainer{}, err
	}
	if err := writeShimSpec(spec, pl.rtName, pl.grace); err != nil {
		return scriptContainer{}, err
	}
	if spec.TerminationFile != "" {
		if _, err := shim.PrepareTerminationFile(spec.ShimDir); err != nil {
			return scriptContainer{}, err
		}
	}
	for name, data := range cs.Files {
		// Env files may hold secret values: only the job's user reads them.
		if err := writeJobFile(filepath.Join(cdir, name), data, 0o600); err != nil {
			return scriptContainer{}, err
		}
	}
	return scriptContainer{Name: c.Name, Init: init, Script: cs, Pin: pinText(b.cfg.Shim, c.Name, mounts)}, nil
}

// writePodFiles writes the pod-wide files beside the containers' — the pod's env, the pre-exec text — and
// then the job script itself.
func writePodFiles(p *v1.Pod, dir string, job *jobScript) error {
	if ip := pod.PodIP(p); ip != "" {
		envText, err := shellEnvFile([]v1.EnvVar{{Name: "POD_IP", Value: ip}})
		if err != nil {
			return err
		}
		if err := writeJobFile(filepath.Join(dir, podEnvFile), envText, 0o600); err != nil {
			return err
		}
		job.HasPodEnv = true
	}
	var pre string
	for _, key := range []string{AnnotationWstunnel, AnnotationPreExec} {
		if text := p.Annotations[key]; text != "" {
			pre += "# " + key + "\n" + text + "\n"
		}
	}
	if pre != "" {
		if err := writeJobFile(filepath.Join(dir, preExecFile), []byte(pre), 0o700); err != nil {
			return err
		}
		job.HasPreExec = true
	}
	return writeJobFile(filepath.Join(dir, scriptFile), []byte(job.render()), 0o700)
}

// pinText is the shell text the job runs before every start of a container, restarts included: one
// `interlink-shim pin` per subPath, which resolves it beneath its volume on the compute node at that moment
// and binds it onto the pinned target the runtime mounts (pod.Mount.Source). It is "" when the container has
// no subPath.
func pinText(shimPath, container string, mounts []pod.Mount) string {
	var lines []string
	for _, m := range mounts {
		if m.PinRoot == "" {
			continue
		}
		lines = append(lines, shellJoin([]string{shimPath, "pin", container, m.Volume.Name, m.PinRoot, m.SubPath, m.Source,
			strconv.FormatUint(uint64(m.PinPerm), 8)}))
	}
	return strings.Join(lines, " &&\n  ")
}

// mpiLauncher returns the shell text that slurm-job.vk.io/mpi-flags puts before every container's command:
// mpiexec over the job's tasks with the pod's flags ("true" asks for mpiexec without extra flags).
func mpiLauncher(p *v1.Pod) (string, error) {
	text, ok := p.Annotations[AnnotationMPIFlags]
	if !ok {
		return "", nil
	}
	var words []string
	if text != "true" {
		var err error
		if words, err = splitWords(text); err != nil {
			return "", fmt.Errorf("annotation %s: %w", AnnotationMPIFlags, err)
		}
	}
	l := `mpiexec -np "${SLURM_NTASKS:-1}" `
	if len(words) > 0 {
		l += shellJoin(words) + " "
	}
	return l, nil
}

func chownTree(dir string, uid int) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, -1)
	})
}
