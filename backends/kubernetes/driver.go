// Package kubernetes is the Kubernetes backend of interlink-dispatcher: it offloads each pod to another
// Kubernetes cluster (a partner's, a cloud's) through k8s.io/client-go. The remote pod is named after the
// local pod's UID, carries the backend's labels (shared/pod) and the local identity in annotations, and owns
// the ConfigMaps and Secrets made from what interLink sent, so that deleting it removes them. Status, List and
// Logs find remote pods through an informer on the backend's label selector: a status costs no request to the
// remote API server.
package kubernetes

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Version is the version Describe reports: the command sets it from its build stamp (-X main.version).
var Version = buildinfo.Read("", "").Version

// Kind is the backend's kind in its Description.
const Kind = "kubernetes"

// syncTimeout bounds the first listing of the remote pods at start.
const syncTimeout = time.Minute

// Backend offloads pods to one remote Kubernetes cluster. Build it with New.
type Backend struct {
	env    backend.Env
	cfg    Config
	rest   *rest.Config
	cli    kubernetes.Interface
	log    *slog.Logger
	engine string // "Kubernetes v1.34.4 at https://..."

	stop      chan struct{}
	stopOnce  sync.Once
	informers map[string]cache.SharedIndexInformer // by remote namespace

	locks [64]sync.Mutex // striped per-pod locks: Create and Delete of one pod never interleave

	mu       sync.Mutex
	extended []string              // extended resources the remote nodes offer, for the capabilities
	created  map[string]createdPod // pods this process created, by UID, until the informer has seen them

	metrics *metrics
}

var _ backend.Backend = (*Backend)(nil)

// New is the backend's Factory: it reaches the remote cluster, lists its pods of this backend and instance
// (the informer's first list is the recovery), and keeps watching them.
func New(ctx context.Context, env backend.Env) (backend.Backend, error) {
	return NewBackend(ctx, env)
}

// NewBackend is New with its concrete type, for tests.
func NewBackend(ctx context.Context, env backend.Env) (*Backend, error) {
	cfg, warnings, err := ParseConfig(env.Name, env.Config)
	for _, w := range warnings {
		slog.Warn(w)
	}
	if err != nil {
		return nil, err
	}
	for what, v := range map[string]string{"backend name": env.Name, "dispatcher instance": env.Instance} {
		if errs := validation.IsValidLabelValue(v); v == "" || len(errs) > 0 {
			return nil, fmt.Errorf("the %s %q cannot label remote objects: %s", what, v, strings.Join(errs, "; "))
		}
	}
	rc, ns, err := restConfig(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Namespace == "" {
		cfg.Namespace = ns
	}
	rc.QPS, rc.Burst = cfg.QPS, cfg.Burst
	rc.UserAgent = "interlink-dispatcher-backend-kubernetes/" + Version
	m := newMetrics()
	rc.Wrap(m.countRequests)
	cli, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("config key kubeconfig: %v", err)
	}
	b := &Backend{env: env, cfg: cfg, rest: rc, cli: cli, log: slog.Default().With("backend", env.Name),
		stop: make(chan struct{}), informers: map[string]cache.SharedIndexInformer{},
		created: map[string]createdPod{}, metrics: m}
	start := time.Now()
	v, err := cli.Discovery().ServerVersion()
	b.metrics.observe("version", start, err)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the remote Kubernetes API server at %s: %v", rc.Host, err)
	}
	b.engine = fmt.Sprintf("Kubernetes %s at %s", v.GitVersion, rc.Host)
	if _, err := b.Capacity(ctx); err != nil {
		return nil, err
	}
	if err := b.startInformers(ctx); err != nil {
		b.Close()
		return nil, err
	}
	b.log.Info("kubernetes backend ready", "engine", b.engine, "namespaces", b.namespaces(), "selector", b.selector())
	return b, nil
}

// restConfig builds the client config from the kubeconfig (or in-cluster) and returns the namespace its
// context names ("default" when none).
func restConfig(cfg Config) (*rest.Config, string, error) {
	if cfg.Kubeconfig == "" && cfg.Context == "" {
		if rc, err := rest.InClusterConfig(); err == nil {
			ns := "default"
			if b, err := readFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
				ns = strings.TrimSpace(string(b))
			}
			return rc, ns, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cfg.Kubeconfig != "" {
		rules.ExplicitPath = cfg.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: cfg.Context})
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("config key kubeconfig: no usable kubeconfig (%v); set kubeconfig, or run the dispatcher in the remote cluster", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	return rc, ns, nil
}

// namespaces are the remote namespaces pods may go to.
func (b *Backend) namespaces() []string {
	set := map[string]bool{b.cfg.Namespace: true}
	for _, ns := range b.cfg.NamespaceMap {
		set[ns] = true
	}
	out := make([]string, 0, len(set))
	for ns := range set {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// startInformers starts one pod informer per remote namespace on the backend's selector and waits for their
// first list.
func (b *Backend) startInformers(ctx context.Context) error {
	for _, ns := range b.namespaces() {
		f := informers.NewSharedInformerFactoryWithOptions(b.cli, 0, informers.WithNamespace(ns),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = b.selector() }))
		inf := f.Core().V1().Pods().Informer()
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				if p, ok := obj.(*v1.Pod); ok {
					b.seen(p.Annotations[annotationUID])
				}
			},
		})
		_ = inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
			b.metrics.watchErrors.Inc()
			b.log.Warn("the watch of remote pods failed; it is restarted", "namespace", ns, "err", err)
		})
		b.informers[ns] = inf
		go inf.Run(b.stop)
	}
	sctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	for ns, inf := range b.informers {
		if !cache.WaitForCacheSync(sctx.Done(), inf.HasSynced) {
			return fmt.Errorf("cannot list the pods of remote namespace %s within %s: check the RBAC of the kubeconfig's user (deploy/kubernetes-backend/rbac.yaml)", ns, syncTimeout)
		}
	}
	return nil
}

// Close stops watching the remote cluster; the remote pods keep running.
func (b *Backend) Close() error {
	b.stopOnce.Do(func() { close(b.stop) })
	return nil
}

// Describe names the backend and declares what it honours.
func (b *Backend) Describe(ctx context.Context) (backend.Description, error) {
	return backend.Description{Name: Kind, Version: Version, ProtocolVersion: backend.ProtocolVersion,
		Engine: b.engine, Capabilities: b.capabilities()}, nil
}

// capabilities are what a Kubernetes cluster runs as written. Not hostPath (the remote nodes' files are not
// the pod's), nor any volume that names storage of the local cluster (PVCs, CSI...): shared/pod.Validate
// refuses those with their field path.
func (b *Backend) capabilities() backend.Capabilities {
	b.mu.Lock()
	ext := append([]string(nil), b.extended...)
	b.mu.Unlock()
	return backend.Capabilities{
		VolumeKinds: []string{pod.KindConfigMap, pod.KindSecret, pod.KindProjected, pod.KindDownwardAPI, pod.KindEmptyDir},
		Features: []string{
			backend.FeatureInitContainers, backend.FeatureMultipleContainers, backend.FeatureSharedLocalhost,
			backend.FeaturePorts, backend.FeatureEmptyDirMemory, backend.FeatureEmptyDirSizeLimit, backend.FeatureSubPath,
			backend.FeatureRunAsUser, backend.FeatureRunAsGroup, backend.FeaturePrivileged,
			backend.FeatureReadOnlyRootFS, backend.FeatureCapabilities, backend.FeatureImagePullPolicy,
			backend.FeatureRestartPolicyAlways, backend.FeatureRestartPolicyOnFailure,
			backend.FeatureTerminationGrace, backend.FeatureHostNetwork, pod.FeatureNoNewPrivileges,
			backend.FeatureProbes, backend.FeatureLifecycleHooks,
			// The remote kubelet does these itself from the pod's spec, which goes there as it is: the
			// termination message (the status carries it), hostAliases, safe sysctls, supplementalGroups and
			// runAsNonRoot against the image's user.
			backend.FeatureTerminationMessage, backend.FeatureHostAliases, backend.FeatureSysctls,
			backend.FeatureSupplementalGroups, backend.FeatureRunAsNonRoot,
		},
		ExtendedResources: ext,
	}
}

// Metrics returns the backend's remote API call metrics.
func (b *Backend) Metrics(ctx context.Context) ([]*dto.MetricFamily, error) {
	return b.metrics.gather()
}

// APIRequests is how many HTTP requests the backend has sent to the remote API server (watches included,
// each counted once when it starts).
func (b *Backend) APIRequests() int64 { return b.metrics.requests.Load() }

// lock takes the pod's lock and returns its release.
func (b *Backend) lock(uid string) func() {
	h := fnv.New32a()
	h.Write([]byte(uid))
	m := &b.locks[h.Sum32()%uint32(len(b.locks))]
	m.Lock()
	return m.Unlock
}

// createdPod is a remote pod this process created and the watch has not shown yet: the API server's answer
// to the create, and when it came.
type createdPod struct {
	pod *v1.Pod
	at  time.Time
}

// unseenFor is how long a created pod is kept for the watch to show; past it the watch has missed nothing
// that reads of the cache do not see.
const unseenFor = time.Minute

func (b *Backend) markCreated(uid string, rp *v1.Pod) {
	b.mu.Lock()
	b.created[uid] = createdPod{pod: rp, at: time.Now()}
	b.mu.Unlock()
}

func (b *Backend) seen(uid string) {
	b.mu.Lock()
	delete(b.created, uid)
	b.mu.Unlock()
}

// justCreated tells whether this process created the pod and the informer has not shown it yet.
func (b *Backend) justCreated(uid string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.created[uid]
	if ok && time.Since(c.at) > unseenFor {
		delete(b.created, uid)
		return false
	}
	return ok
}

// unseen returns the pods this process created a moment ago that the watch has not shown yet, as the API
// server answered their create: a List right after a Create shows the pod.
func (b *Backend) unseen() []*v1.Pod {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*v1.Pod
	for uid, c := range b.created {
		if time.Since(c.at) > unseenFor {
			delete(b.created, uid)
			continue
		}
		out = append(out, c.pod)
	}
	return out
}

// cached returns the remote pod of local UID uid from the informers: in namespace ns when given, else in
// any of the backend's remote namespaces.
func (b *Backend) cached(uid, ns string) (*v1.Pod, string) {
	name := remoteName(uid)
	try := b.namespaces()
	if ns != "" {
		try = []string{ns}
	}
	for _, n := range try {
		inf, ok := b.informers[n]
		if !ok {
			continue
		}
		obj, found, err := inf.GetIndexer().GetByKey(n + "/" + name)
		if err == nil && found {
			if p, ok := obj.(*v1.Pod); ok && p.Annotations[annotationUID] == uid {
				return p, n
			}
		}
	}
	return nil, ""
}

// remoteNS is the remote namespace of a pod given its local namespace (empty when only its UID is known)
// and the remote id Create returned ("namespace/name", empty when unknown).
func (b *Backend) remoteNS(localNS, remoteID string) string {
	if ns, _, ok := strings.Cut(remoteID, "/"); ok && ns != "" {
		return ns
	}
	if localNS != "" {
		return b.cfg.remoteNamespace(localNS)
	}
	return ""
}
