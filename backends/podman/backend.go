// Package podman is the Podman backend: each Kubernetes pod becomes one native Podman pod, whose infra
// container holds the network, IPC and UTS namespaces its containers share (so they reach each other on
// localhost; a pod of one container needs none, see needsInfra), driven through Podman's libpod REST API by
// the thin client in ./libpod.
package podman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/backends/podman/libpod"
	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
	"github.com/interlink-hq/interlink-dispatcher/shared/keyed"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

// Version is the version Describe reports: the command sets it from its build stamp (-X main.version);
// left alone, it is what the Go toolchain recorded in the binary.
var Version = buildinfo.Read("", "").Version

// Backend runs pods on one Podman service.
type Backend struct {
	env         backend.Env
	cfg         Config
	pullTimeout time.Duration
	api         *libpod.Client
	eng         stateEngine // api, where Status and the view use it
	view        *view
	engine      string // e.g. "Podman 4.3.1"
	log         *slog.Logger
	metrics     *metrics
	// host is what the service said about its host (GET /info), asked when first needed and kept: it does
	// not change while the service runs, and Podman builds the answer slowly (see libpod.Client.Ping).
	hostMu     sync.Mutex
	host       *libpod.Info
	hostAsking chan struct{} // closed when the /info request in flight ends; nil when none is

	// ctx lives as long as the backend; launches run under it so that Close stops them.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// podLocks serialise the work on one pod that changes its record or its files (create, record updates,
	// delete); work on other pods runs on. Never taken while mu is held.
	podLocks keyed.Mutex
	// mu guards the maps below and the fields of the records; it is held only to read or change them, never
	// across a disk write or an engine call.
	mu      sync.RWMutex
	records map[string]*record      // by pod UID
	running map[string]launchHandle // launches in flight, by pod UID
	watches map[string]launchHandle // usage watches of sized emptyDirs, by pod UID

	cacheMu sync.Mutex
	// lastStates caches the previous run of restarted containers, found from the engine's died events,
	// keyed by container id and restart count: it cannot change until the container restarts again.
	lastStates map[string]lastRun
	// inspects caches the last inspect of each container, see inspect.
	inspects map[string]inspectEntry
	// termMessages caches the termination message of ended runs, keyed by container id and "@" the run's
	// end (see terminationMessage).
	termMessages map[string]string
	// imageConfigs caches the configuration of each image id a pull named, see imageConfig.
	imageConfigs map[string]libpod.ImageConfig

	pulls pullQueue // image pulls shared by concurrent launches
}

var _ backend.Backend = (*Backend)(nil)

// New is the backend's Factory: it connects to the configured Podman service, refuses one older than 4.3,
// loads the pod records of env.DataDir and resumes the launches a previous process left unfinished.
func New(ctx context.Context, env backend.Env) (backend.Backend, error) {
	return newBackend(ctx, env)
}

func newBackend(ctx context.Context, env backend.Env) (*Backend, error) {
	cfg, pullTimeout, warnings, err := parseConfig(env.Name, env.Config)
	for _, w := range warnings {
		slog.Warn(w)
	}
	if err != nil {
		return nil, err
	}
	if env.DataDir == "" {
		return nil, errors.New("the podman backend needs a data directory (backend.Env.DataDir) for its pods' files")
	}
	if env.Instance == "" {
		return nil, errors.New("the podman backend needs the dispatcher instance id (backend.Env.Instance) to label what it creates")
	}
	api, err := libpod.New(cfg.URI, cfg.Identity)
	if err != nil {
		return nil, settings.Bad(settings.Prefix(env.Name), "uri", err)
	}
	m := newMetrics()
	m.observe(api)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := api.Ping(pctx)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the Podman service at %s (config key uri): %w", cfg.URI, err)
	}
	if err := libpod.CheckVersion(v); err != nil {
		return nil, fmt.Errorf("the Podman service at %s: %w", cfg.URI, err)
	}
	freshness := durationOr(cfg.StatusMaxAge, defaultStatusMaxAge)
	resync := durationOr(cfg.ResyncInterval, defaultResyncInterval)
	b := &Backend{
		env: env, cfg: cfg, pullTimeout: pullTimeout, api: api, eng: api,
		engine:       "Podman " + v,
		log:          slog.Default().With("backend", env.Name),
		metrics:      m,
		running:      map[string]launchHandle{},
		watches:      map[string]launchHandle{},
		lastStates:   map[string]lastRun{},
		inspects:     map[string]inspectEntry{},
		termMessages: map[string]string{},
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if b.records, err = b.loadRecords(); err != nil {
		b.cancel()
		return nil, err
	}
	b.view = newView(b.ctx, b.eng, map[string]string{pod.LabelInstance: env.Instance, pod.LabelBackend: env.Name}, freshness, resync, b.log)
	b.view.onList = b.pruneCache
	b.view.sameClock = strings.HasPrefix(cfg.URI, "unix://")
	b.view.podName = func(uid string) string {
		b.mu.RLock()
		defer b.mu.RUnlock()
		if r := b.records[uid]; r != nil {
			return r.PodName
		}
		return ""
	}
	b.view.run(b.ctx, &b.wg)
	// Ask about the host now, so that the first capacity report and pod with limits find the answer ready,
	// but do not let a slow answer hold the start for long, nor fail it: whoever needs it next waits for it.
	asked := make(chan struct{})
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(asked)
		if _, err := b.hostInfo(b.ctx); err != nil && b.ctx.Err() == nil {
			b.log.Warn("cannot ask the Podman service about its host yet; asking again when needed", "err", err)
		}
	}()
	select {
	case <-asked:
	case <-time.After(hostInfoWait):
		b.log.Warn("the Podman service is slow to describe its host; starting without waiting further", "waited", hostInfoWait)
	case <-ctx.Done():
	}
	for _, r := range b.records {
		if r.Eviction != nil {
			continue
		}
		if !r.Launched && r.InitFailed == "" && len(r.Failures) == 0 {
			b.startLaunch(r, nil)
		}
		b.startWatch(r)
	}
	return b, nil
}

// Close stops the launches in flight (they resume when a backend starts again on the same data directory).
func (b *Backend) Close() error {
	b.cancel()
	b.wg.Wait()
	return nil
}

// Describe names the backend and declares what it honours.
func (b *Backend) Describe(ctx context.Context) (backend.Description, error) {
	return backend.Description{
		Name:            "podman",
		Version:         Version,
		ProtocolVersion: backend.ProtocolVersion,
		Engine:          b.engine,
		Capabilities:    capabilities(),
	}, nil
}

func capabilities() backend.Capabilities {
	return backend.Capabilities{
		VolumeKinds: []string{"configMap", "secret", "projected", "downwardAPI", "emptyDir", "hostPath"},
		Features: []string{
			backend.FeatureInitContainers, backend.FeatureMultipleContainers, backend.FeatureSharedLocalhost,
			backend.FeaturePorts, backend.FeatureEmptyDirMemory, backend.FeatureSubPath,
			backend.FeatureRunAsUser, backend.FeatureRunAsGroup, backend.FeaturePrivileged,
			backend.FeatureReadOnlyRootFS, backend.FeatureCapabilities, backend.FeatureImagePullPolicy,
			backend.FeatureRestartPolicyAlways, backend.FeatureRestartPolicyOnFailure,
			backend.FeatureTerminationGrace, pod.FeatureNoNewPrivileges,
			backend.FeatureEmptyDirSizeLimit, // enforced by eviction, as the kubelet does (evict.go)
			// Run by the shim inside each container.
			backend.FeatureProbes, backend.FeatureLifecycleHooks,
			backend.FeatureTerminationMessage, backend.FeatureHostAliases, backend.FeatureSysctls, backend.FeatureRunAsNonRoot, backend.FeatureSupplementalGroups,
		},
	}
}

// hostInfoWait bounds how long a start waits for the service to describe its host.
const hostInfoWait = 10 * time.Second

// hostInfo returns what the service said about its host, asking it the first time (or until it answers);
// callers arriving while a request is in flight wait for its answer rather than ask again.
func (b *Backend) hostInfo(ctx context.Context) (libpod.Info, error) {
	for {
		b.hostMu.Lock()
		if b.host != nil {
			info := *b.host
			b.hostMu.Unlock()
			return info, nil
		}
		if asking := b.hostAsking; asking != nil {
			b.hostMu.Unlock()
			select {
			case <-asking:
				continue
			case <-ctx.Done():
				return libpod.Info{}, fmt.Errorf("podman info: %w", ctx.Err())
			}
		}
		done := make(chan struct{})
		b.hostAsking = done
		b.hostMu.Unlock()

		info, err := b.api.Info(ctx)
		b.hostMu.Lock()
		b.hostAsking = nil
		if err == nil {
			b.host = &info
		}
		b.hostMu.Unlock()
		close(done)
		return info, err
	}
}

// Capacity reports the Podman host's CPUs and memory, and the configured pod limit.
func (b *Backend) Capacity(ctx context.Context) (backend.Capacity, error) {
	// The host's figures are asked once, but the dispatcher reads Capacity as the engine's health too: the
	// service must answer now, and its ping is the cheap question.
	if _, err := b.api.Ping(ctx); err != nil {
		return backend.Capacity{}, engineError(err)
	}
	info, err := b.hostInfo(ctx)
	if err != nil {
		return backend.Capacity{}, engineError(err)
	}
	var c backend.Capacity
	if info.Host.CPUs > 0 {
		cpu := int64(info.Host.CPUs) * 1000
		c.CPUMilli = &cpu
	}
	if info.Host.MemTotal > 0 {
		mem := info.Host.MemTotal
		c.MemoryBytes = &mem
	}
	if b.cfg.Pods > 0 {
		pods := b.cfg.Pods
		c.Pods = &pods
	}
	return c, nil
}

// podLog is the backend's logger for lines about pod p, with the keys every backend uses.
func (b *Backend) podLog(p *v1.Pod) *slog.Logger {
	return b.log.With("pod_uid", string(p.UID), "namespace", p.Namespace, "name", p.Name)
}

// labelLog is podLog for an engine object, from the labels the backend put on it.
func (b *Backend) labelLog(labels map[string]string) *slog.Logger {
	return withPodLabels(b.log, labels)
}

// withPodLabels is log for lines about the pod of an engine object with these labels.
func withPodLabels(log *slog.Logger, labels map[string]string) *slog.Logger {
	return log.With("pod_uid", labels[pod.LabelPodUID], "namespace", labels[pod.LabelNamespace], "name", labels[pod.LabelPodName])
}

// engineError gives an engine failure its kind: unreachable is Unavailable, the rest Internal.
func engineError(err error) error {
	var u *libpod.UnavailableError
	if errors.As(err, &u) {
		return &backend.Error{Kind: backend.KindUnavailable, Msg: u.Error(), Err: err}
	}
	if libpod.IsNotFound(err) {
		return &backend.Error{Kind: backend.KindNotFound, Msg: err.Error(), Err: err}
	}
	return &backend.Error{Kind: backend.KindInternal, Msg: err.Error(), Err: err}
}
