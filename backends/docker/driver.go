// Package docker is the Docker Engine backend of interlink-dispatcher: it runs each Kubernetes pod as a set of
// Docker containers sharing the network and IPC namespaces of a pause container, through the official Engine
// API client. The pod layer it shares with the other backends (validation, volumes, env, statuses) is
// shared/pod; what is Docker's own is here, one file per concern.
//
// Every object it creates carries the labels of shared/pod (pod UID, namespace, name, container, role, the
// dispatcher instance and the backend name); it lists and touches only objects with its own backend and
// instance labels. Each pod also has a directory under the data directory (its volumes, the create request
// and the errors met after Create answered), so that a restarted backend reports and supervises every pod
// it ran before.
package docker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
	"github.com/interlink-hq/interlink-dispatcher/shared/keyed"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

// Version is the version Describe reports: the command sets it from its build stamp (-X main.version);
// left alone, it is what the Go toolchain recorded in the binary.
var Version = buildinfo.Read("", "").Version

// Kind is the backend's kind in its Description.
const Kind = "docker"

// Backend runs pods on one Docker Engine. Build it with New.
type Backend struct {
	env     backend.Env
	cfg     Config
	cli     engine // the engine client, counting its calls
	dataDir string // pod directories live in dataDir/pods/<uid>
	log     *slog.Logger

	engine     string // "Docker Engine 20.10.24"
	pauseImage string
	shimPath   string
	gpus       int64

	ctx    context.Context // the backend's lifetime; runners live under it
	cancel context.CancelFunc

	podLocks keyed.Mutex // Create and Delete of one pod never interleave; other pods' go on
	// stateLocks serialise the updates of one pod's state file: its runner writes, Status reads.
	stateLocks keyed.Mutex
	// admitMu makes counting the pods against the limit and reserving the new pod's directory one step, so
	// that creates of different pods at once cannot all pass the same count.
	admitMu sync.Mutex

	mu      sync.Mutex
	runners map[string]*runner // by pod UID

	inspects inspectCache
	images   imageCache
	metrics  *metrics

	view      *view      // the pods' containers as the engine last said, kept current by its events
	syncMu    sync.Mutex // one full list into the view at a time
	watchDone chan struct{}
}

var _ backend.Backend = (*Backend)(nil)

// New is the backend's Factory: it connects to the engine, makes sure the pause image exists, and takes
// back the supervision of every pod found in its data directory.
func New(ctx context.Context, env backend.Env) (backend.Backend, error) {
	return NewBackend(ctx, env)
}

// NewBackend is New with its concrete type, for tests.
func NewBackend(ctx context.Context, env backend.Env) (*Backend, error) {
	return build(ctx, env, options{})
}

// options are what a test changes in a backend: the logger, and the engine as the backend sees it (the
// real one, with a fault put in its way).
type options struct {
	log  *slog.Logger
	wrap func(engine) engine
}

func build(ctx context.Context, env backend.Env, o options) (*Backend, error) {
	cfg, warnings, err := ParseConfig(env.Name, env.Config)
	for _, w := range warnings {
		slog.Warn(w)
	}
	if err != nil {
		return nil, err
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	dc, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, settings.Bad(settings.Prefix(env.Name), "host", err)
	}
	dataDir := cfg.DataDir
	if dataDir == "" {
		dataDir = env.DataDir
	}
	if dataDir == "" {
		return nil, fmt.Errorf("the docker backend needs a data directory: set data_dir in its config or the dispatcher's data directory")
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "pods"), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the data directory %s: %v", dataDir, err)
	}
	m := newMetrics()
	var cli engine = countingEngine{engine: dockerClient{dc}, count: m.count}
	if o.wrap != nil {
		cli = o.wrap(cli)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	b := &Backend{
		env: env, cfg: cfg, cli: cli, dataDir: dataDir,
		log:     o.log.With("backend", env.Name),
		runners: map[string]*runner{},
		metrics: m,
		view:    newView(), watchDone: make(chan struct{}),
	}
	b.inspects.entries = map[string]inspectEntry{}
	if b.shimPath, err = findShim(cfg.Shim); err != nil {
		return nil, settings.Bad(settings.Prefix(env.Name), "shim", err)
	}
	b.ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))

	info, err := cli.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the Docker Engine at %s: %v", cli.DaemonHost(), err)
	}
	b.engine = "Docker Engine " + info.ServerVersion
	b.gpus = countGPUs(cfg, info)
	if b.pauseImage, err = b.ensurePauseImage(ctx); err != nil {
		return nil, err
	}
	go b.watchEvents()
	// A check (interlink-dispatcher check) may run beside the dispatcher that owns these pods: it must not
	// supervise them too, nor clean up what it would take for half-created pods.
	if !env.Check {
		if err := b.recover(ctx); err != nil {
			b.cancel()
			<-b.watchDone
			return nil, err
		}
	}
	b.log.Info("docker backend ready", "engine", b.engine, "api", cli.ClientVersion(), "pause_image", b.pauseImage,
		"data_dir", dataDir, "gpus", b.gpus)
	return b, nil
}

// Close stops supervising pods (their containers keep running) and closes the engine connection.
func (b *Backend) Close() error {
	b.cancel()
	<-b.watchDone
	b.stopAllRunners()
	return b.cli.Close()
}

func (b *Backend) stopAllRunners() {
	b.mu.Lock()
	runners := make([]*runner, 0, len(b.runners))
	for _, r := range b.runners {
		runners = append(runners, r)
	}
	b.mu.Unlock()
	for _, r := range runners {
		r.cancel()
		<-r.done
	}
}

// Describe names the backend and declares what it honours.
func (b *Backend) Describe(ctx context.Context) (backend.Description, error) {
	return backend.Description{
		Name: Kind, Version: Version, ProtocolVersion: backend.ProtocolVersion,
		Engine: b.engine, Capabilities: b.capabilities(),
	}, nil
}

func (b *Backend) capabilities() backend.Capabilities {
	caps := backend.Capabilities{
		VolumeKinds: []string{pod.KindConfigMap, pod.KindSecret, pod.KindProjected, pod.KindDownwardAPI,
			pod.KindEmptyDir, pod.KindHostPath},
		Features: []string{
			backend.FeatureInitContainers, backend.FeatureMultipleContainers, backend.FeatureSharedLocalhost,
			backend.FeaturePorts, backend.FeatureEmptyDirMemory, backend.FeatureEmptyDirSizeLimit, backend.FeatureSubPath,
			backend.FeatureRunAsUser, backend.FeatureRunAsGroup, backend.FeaturePrivileged,
			backend.FeatureReadOnlyRootFS, backend.FeatureCapabilities, backend.FeatureImagePullPolicy,
			backend.FeatureRestartPolicyAlways, backend.FeatureRestartPolicyOnFailure,
			backend.FeatureTerminationGrace, backend.FeatureHostNetwork, pod.FeatureNoNewPrivileges,
			backend.FeatureProbes, backend.FeatureLifecycleHooks, backend.FeatureTerminationMessage, backend.FeatureHostAliases, backend.FeatureSysctls, backend.FeatureRunAsNonRoot, backend.FeatureSupplementalGroups,
		},
	}
	if b.gpus > 0 {
		caps.ExtendedResources = []string{gpuResource}
	}
	return caps
}

// Metrics returns the backend's engine call metrics.
func (b *Backend) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	return b.metrics.gather()
}

// lock takes the pod's lock and returns its release.
func (b *Backend) lock(uid string) func() { return b.podLocks.Lock(uid) }

// ownFilter selects the objects of this backend and dispatcher instance, and adds any extra label=value.
func (b *Backend) ownFilter(extra ...string) filters.Args {
	f := filters.NewArgs(
		filters.Arg("label", pod.LabelBackend+"="+b.env.Name),
		filters.Arg("label", pod.LabelInstance+"="+b.env.Instance),
	)
	for i := 0; i+1 < len(extra); i += 2 {
		f.Add("label", extra[i]+"="+extra[i+1])
	}
	return f
}

// podRef names a pod in the log: its UID, namespace and name.
type podRef struct{ uid, namespace, name string }

func refOfPod(p *v1.Pod) podRef {
	return podRef{uid: string(p.UID), namespace: p.Namespace, name: p.Name}
}

// podLog is the backend's log for lines about the pod ref names: every such line names it.
func (b *Backend) podLog(ref podRef) *slog.Logger {
	return b.log.With("pod_uid", ref.uid, "namespace", ref.namespace, "name", ref.name)
}
