// Package slurm is the dispatcher's backend for HPC sites: every pod becomes one SLURM batch job, submitted
// with sbatch, whose script runs the pod's containers with a container runtime on the compute node
// (Apptainer/Singularity, Enroot, Podman, or none) and records each container's state, exit code, times and
// timestamped output in the pod's working directory. Status asks squeue once per batch of pods and reads those
// files, so a job that has left the queue (SLURM 22.05 has no accounting here) is still answered.
//
// It honours the pod annotations of interLink's reference SLURM plugin (slurm-job.vk.io/flags, flavor,
// pre-exec, mpi-flags, image-root, singularity-*/enroot-* options and mounts) and avoids its faults: flags are
// parsed shell-wise and merged by flag (short and long spellings alike), the pod's CPU and memory are summed
// over its containers, nothing from a pod reaches a shell unquoted, unknown flavors and fields are refused
// rather than dropped, sbatch warnings are not failures, and a failed submission leaves no job behind.
package slurm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
	"github.com/interlink-hq/interlink-dispatcher/shared/keyed"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	cfgsettings "github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

// Version is the version Describe reports: the command sets it from its build stamp (-X main.version);
// left alone, it is what the Go toolchain recorded in the binary.
var Version = buildinfo.Read("", "").Version

// Backend runs pods as SLURM jobs. It keeps no state in memory that the pod directories and squeue do not
// hold, so a restarted backend finds every pod again (and removes what its trash still holds).
type Backend struct {
	env     backend.Env
	cfg     *settings
	log     *slog.Logger
	metrics *backendMetrics
	locks   keyed.Mutex  // create and delete of one pod UID never interleave
	queue   *queueView   // the squeue runs that status, delete and logs share
	trash   *trashBin    // deleted pods' directories, removed in the background
	cancels *cancelBatch // the scancel runs that concurrent deletes share
}

var _ backend.Backend = (*Backend)(nil)

// New is the backend's Factory: it reads the config section and prepares the pod directory root.
func New(_ context.Context, env backend.Env) (backend.Backend, error) {
	return newBackend(env)
}

func newBackend(env backend.Env) (*Backend, error) {
	cfg, warnings, err := parseConfig(env.Name, env.Config, env.DataDir)
	for _, w := range warnings {
		slog.Warn(w)
	}
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(cfg.Shim); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, cfgsettings.Bad(cfg.prefix, "shim", fmt.Errorf("the interlink-shim binary %s is missing or not executable; build cmd/interlink-shim and set this key to its path on a filesystem the compute nodes share", cfg.Shim))
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, fmt.Errorf("root: cannot create the pod directory root %s: %w", cfg.Root, err)
	}
	trash, err := newTrashBin(cfg.Root, slog.Default())
	if err != nil {
		return nil, fmt.Errorf("root: cannot prepare the trash of deleted pods' directories in %s: %w", cfg.Root, err)
	}
	b := &Backend{
		env:     env,
		cfg:     cfg,
		log:     slog.Default(),
		metrics: newBackendMetrics(),
		trash:   trash,
	}
	b.queue = newQueueView(cfg.SqueueMaxAge.D(), cfg.CommandTimeout.D(), b.querySqueue)
	b.cancels = b.newCancelBatch()
	return b, nil
}

// capabilities declares what the backend honours. Containers of a job share the node's network, so they
// reach each other on localhost; runtime-specific limits (e.g. no volumes with runtime none) are checked
// per pod in Create.
func capabilities() backend.Capabilities {
	return backend.Capabilities{
		VolumeKinds: []string{pod.KindConfigMap, pod.KindSecret, pod.KindProjected, pod.KindDownwardAPI,
			pod.KindEmptyDir, pod.KindHostPath},
		Features: []string{
			backend.FeatureInitContainers, backend.FeatureMultipleContainers, backend.FeatureSharedLocalhost,
			backend.FeaturePorts, backend.FeatureSubPath, backend.FeatureRunAsUser, backend.FeatureImagePullPolicy,
			backend.FeatureRestartPolicyAlways, backend.FeatureRestartPolicyOnFailure,
			backend.FeatureTerminationGrace, backend.FeatureHostNetwork, pod.FeatureNoNewPrivileges,
			backend.FeatureProbes, backend.FeatureLifecycleHooks, backend.FeatureEmptyDirSizeLimit, backend.FeatureRunAsNonRoot,
			backend.FeatureTerminationMessage,                                                     // with runtime none, the fallback to the log only
			backend.FeatureHostAliases, backend.FeatureSysctls, backend.FeatureSupplementalGroups, // with runtime podman
		},
		ExtendedResources: []string{"nvidia.com/gpu", "amd.com/gpu"},
	}
}

// Describe implements backend.Backend.
func (b *Backend) Describe(ctx context.Context) (backend.Description, error) {
	engine := "SLURM"
	if res, err := b.cfg.sinfo.run(ctx, "", "--version"); err == nil {
		engine = strings.TrimSpace(string(res.Stdout))
	}
	return backend.Description{
		Name:            "slurm",
		Version:         Version,
		ProtocolVersion: backend.ProtocolVersion,
		Engine:          engine + " (runtime " + b.cfg.Runtime + ")",
		Capabilities:    capabilities(),
	}, nil
}

// slurmError turns a failed SLURM command into a backend error: unavailable when the controller could not be
// reached, internal otherwise; the message is SLURM's own.
func slurmError(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if errors.Is(err, context.DeadlineExceeded) || unreachable(err) {
		return backend.Errorf(backend.KindUnavailable, "%s: %w", msg, err)
	}
	return backend.Errorf(backend.KindInternal, "%s: %w", msg, err)
}

// podLog is the backend's log for lines about pod p: every such line names it.
func (b *Backend) podLog(p *v1.Pod) *slog.Logger {
	return b.log.With("pod_uid", string(p.UID), "namespace", p.Namespace, "name", p.Name)
}
