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
	unlock := b.locks.lock(uid)
	defer unlock()

	dir := b.podDir(uid)
	rec, err := readRecord(dir)
	switch {
	case err == nil && rec.JobID != "":
		return backend.CreateResult{RemoteID: rec.JobID}, nil
	case err != nil && !notExist(err):
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "cannot read the pod's directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, submittingFile)); err == nil {
		// An earlier Create stopped while sbatch ran: a job may exist without its id recorded.
		b.cancelByName(uid)
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
	if err := os.WriteFile(filepath.Join(dir, submittingFile), nil, 0o644); err != nil {
		_ = pod.RemoveDir(dir)
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "cannot write the pod's directory: %w", err)
	}
	jobID, err := b.submit(ctx, uid, dir)
	if err != nil {
		_ = pod.RemoveDir(dir)
		return backend.CreateResult{}, err
	}
	rec.JobID = jobID
	if err := writeRecord(dir, rec); err != nil {
		// Without its record the job could never be found again: do not leave it running.
		_ = b.cancelJob(jobID)
		_ = pod.RemoveDir(dir)
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal, "cannot record job %s in the pod's directory, so it was cancelled: %w", jobID, err)
	}
	_ = os.Remove(filepath.Join(dir, submittingFile))
	b.log.Info("pod submitted", "pod_uid", uid, "namespace", p.Namespace, "name", p.Name, "job_id", jobID, "runtime", rec.Runtime)
	return backend.CreateResult{RemoteID: jobID}, nil
}

func isBackendError(err error) bool {
	var be *backend.Error
	return errors.As(err, &be)
}

// prepare writes the pod's directory: volumes, per-container env and runtime files, the pre-exec text and
// the job script. Errors about the pod are KindInvalid sentences naming the field.
func (b *Backend) prepare(p *v1.Pod, req backend.CreateRequest, dir string) (*podRecord, error) {
	invalid := func(err error) error { return backend.Invalid("%v", err) }
	rtName, err := b.cfg.podRuntime(p)
	if err != nil {
		return nil, invalid(err)
	}
	rt, err := b.cfg.newRuntime(rtName)
	if err != nil {
		return nil, invalid(err)
	}
	flavor, err := b.cfg.resolveFlavor(p)
	if err != nil {
		return nil, invalid(err)
	}
	flags, err := b.cfg.jobFlags(p, flavor)
	if err != nil {
		return nil, invalid(err)
	}
	if d := p.Spec.ActiveDeadlineSeconds; d != nil && *d > 0 {
		// SLURM's time limit is in minutes; the pod must not run longer than it asked.
		flags = mergeFlags(flags, []sbatchFlag{{Name: "time", Value: strconv.FormatInt((*d+59)/60, 10), HasValue: true}})
	}
	launcher, err := mpiLauncher(p)
	if err != nil {
		return nil, invalid(err)
	}
	imagePrefix := ""
	switch rtName {
	case RuntimeApptainer:
		imagePrefix = *b.cfg.Apptainer.ImagePrefix
	case RuntimeEnroot:
		imagePrefix = *b.cfg.Enroot.ImagePrefix
	case RuntimePodman:
		imagePrefix = *b.cfg.Podman.ImagePrefix
	}
	if root, ok := p.Annotations[AnnotationImageRoot]; ok {
		imagePrefix = root
	}

	if err := os.MkdirAll(filepath.Join(dir, containersDir), 0o755); err != nil {
		return nil, err
	}
	objs := pod.NewObjects(req.Containers)
	vols, err := pod.MaterializeVolumes(p, objs, dir)
	if err != nil {
		return nil, invalid(err)
	}

	rec := &podRecord{UID: string(p.UID), Namespace: p.Namespace, Name: p.Name, Runtime: rtName, Created: time.Now().UTC()}
	// The shim stops each container within its grace; the runtime's own stop waits 5 s more.
	grace := shimGrace(pod.GracePeriod(p), time.Duration(b.cfg.KillWait))
	job := &jobScript{
		Bash: b.cfg.Bash, Dir: dir, UID: string(p.UID), Runtime: rtName, Flags: flags, Shim: b.cfg.Shim,
		Grace: grace + 5*time.Second, KillWait: time.Duration(b.cfg.KillWait), Backoff: time.Duration(b.cfg.RestartBackoff),
		MaxBackoff: time.Duration(b.cfg.MaxRestartBackoff), PullRetries: b.cfg.PullRetries,
	}
	if rtName == RuntimePodman {
		job.Noise = podmanNoise
	}
	for _, v := range pod.SizeLimitedDirs(vols) {
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
		c := e.c
		if !containerName.MatchString(c.Name) || len(c.Name) > 63 {
			return nil, backend.Invalid("container name %q must be a DNS label", c.Name)
		}
		env, err := pod.ResolveEnv(p, c, objs)
		if err != nil {
			return nil, backend.Invalid("container %q: %v", c.Name, err)
		}
		lookup := pod.EnvLookup(env)
		mounts, err := pod.Mounts(c, vols, pod.PinDir(dir, c.Name))
		if err != nil {
			return nil, invalid(err)
		}
		cdir := filepath.Join(dir, containersDir, c.Name)
		spec := &containerSpec{
			Pod: p, Container: c, Init: e.init, Name: c.Name,
			RunName: "il-" + string(p.UID) + "-" + c.Name, Dir: cdir,
			Image: imageRef(c.Image, imagePrefix), Command: pod.ExpandAll(c.Command, lookup),
			Args: pod.ExpandAll(c.Args, lookup), Env: env, Mounts: mounts,
			Resources: pod.ContainerResources(c), PullPolicy: pod.PullPolicy(c), WorkingDir: c.WorkingDir,
			Launcher: launcher, Shim: b.cfg.Shim, ShimDir: filepath.Join(dir, shimDir, c.Name),
		}
		if rtName == RuntimePodman && len(spec.Command) == 0 {
			spec.ArgvInJob = true
			if len(spec.Args) > 0 {
				a, _ := json.Marshal(spec.Args)
				spec.ArgsJSON = string(a)
			}
		}
		if sc := c.SecurityContext; sc != nil {
			spec.RunAsUser, spec.RunAsGroup = sc.RunAsUser, sc.RunAsGroup
			spec.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
		}
		if err := rt.Check(spec); err != nil {
			return nil, invalid(err)
		}
		cs, err := rt.Render(spec)
		if err != nil {
			return nil, invalid(err)
		}
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			return nil, err
		}
		if err := writeShimSpec(spec, rtName, grace); err != nil {
			return nil, err
		}
		for name, data := range cs.Files {
			// Env files may hold secret values: only the job's user reads them.
			if err := writeFileAtomic(filepath.Join(cdir, name), data, 0o600); err != nil {
				return nil, err
			}
		}
		ctrPolicy := string(policy)
		if e.init {
			// Kubernetes retries a failed init container unless the pod never restarts.
			if policy != v1.RestartPolicyNever {
				ctrPolicy = string(v1.RestartPolicyOnFailure)
			}
			rec.InitContainers = append(rec.InitContainers, c.Name)
		} else {
			rec.Containers = append(rec.Containers, c.Name)
		}
		job.Containers = append(job.Containers, scriptContainer{Name: c.Name, Init: e.init, Policy: ctrPolicy, Script: cs,
			Pin: pinText(b.cfg.Shim, c.Name, mounts)})
	}

	if ip := pod.PodIP(p); ip != "" {
		envText, err := shellEnvFile([]v1.EnvVar{{Name: "POD_IP", Value: ip}})
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(filepath.Join(dir, podEnvFile), envText, 0o600); err != nil {
			return nil, err
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
		if err := writeFileAtomic(filepath.Join(dir, preExecFile), []byte(pre), 0o700); err != nil {
			return nil, err
		}
		job.HasPreExec = true
	}
	if err := writeFileAtomic(filepath.Join(dir, scriptFile), []byte(job.render()), 0o700); err != nil {
		return nil, err
	}
	if err := writeRecord(dir, rec); err != nil {
		return nil, err
	}
	if f, ok := findFlag(flags, "uid"); ok {
		// The job runs as another user: it must own its directory (secrets stay readable by it alone).
		uid, _ := strconv.Atoi(f.Value)
		if err := chownTree(dir, uid); err != nil {
			return nil, fmt.Errorf("cannot give the pod's directory to user %d: %w", uid, err)
		}
	}
	return rec, nil
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
