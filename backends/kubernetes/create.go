package kubernetes

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// Kind letters of remote object names (objectName).
const (
	objConfigMap = "cm"
	objSecret    = "s"
	objVolume    = "v" // a projected or downward API volume whose files interLink computed
)

// remoteObject is a ConfigMap or Secret to make for the remote pod.
type remoteObject struct {
	cm     *v1.ConfigMap
	secret *v1.Secret
}

// Create validates the pod, creates it on the remote cluster held by a scheduling gate, creates the objects
// it mounts owned by it, and lifts the gate. A second Create of the same UID finishes what a first one left
// and returns the same remote id.
func (b *Backend) Create(ctx context.Context, req backend.CreateRequest) (backend.CreateResult, error) {
	p := req.Pod
	if p == nil {
		return backend.CreateResult{}, backend.Invalid("no pod was given")
	}
	if err := pod.CheckUID(string(p.UID)); err != nil {
		return backend.CreateResult{}, err
	}
	if err := pod.ValidIdentity(string(p.UID), p.Namespace, p.Name, true); err != nil {
		return backend.CreateResult{}, backend.Invalid("%v", err)
	}
	if err := pod.Validate(p, b.capabilities(), b.env.Name); err != nil {
		return backend.CreateResult{}, err
	}
	// subPathExpr is expanded here, as the other backends do, with the environment the remote pod gets
	// literally (below): the remote kubelet would expand it alike, but a reference without a value or an
	// expansion leaving the volume is refused now, not met later as a remote container that never starts.
	p = p.DeepCopy()
	if err := pod.ExpandSubPathExprs(p, pod.NewObjects(req.Containers)); err != nil {
		return backend.CreateResult{}, backend.Errorf(backend.KindInvalid, "%w", err)
	}
	uid := string(p.UID)
	name, ns := remoteName(uid), b.cfg.remoteNamespace(p.Namespace)
	remoteID := ns + "/" + name
	rp, objs, err := b.remotePod(p, pod.NewObjects(req.Containers), name, ns)
	if err != nil {
		return backend.CreateResult{}, err
	}
	unlock := b.lock(uid)
	defer unlock()

	start := time.Now()
	got, err := b.cli.CoreV1().Pods(ns).Create(ctx, rp, metav1.CreateOptions{})
	b.metrics.observe("create_pod", start, err)
	switch {
	case apierrors.IsAlreadyExists(err):
		start = time.Now()
		got, err = b.cli.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		b.metrics.observe("get_pod", start, err)
		if err != nil {
			return backend.CreateResult{}, b.apiError(err, "cannot read the remote pod %s", remoteID)
		}
		if got.Annotations[annotationUID] != uid {
			return backend.CreateResult{}, backend.Errorf(backend.KindInternal,
				"the remote pod %s exists and is not that of pod UID %s: it was not made by this backend", remoteID, uid)
		}
		if !gated(got) {
			return backend.CreateResult{RemoteID: remoteID}, nil
		}
	case apierrors.IsNotFound(err):
		// The only object a pod's creation names is its namespace.
		return backend.CreateResult{}, backend.Errorf(backend.KindInternal,
			"the remote namespace %s does not exist: create it with deploy/kubernetes-backend/rbac.yaml, or fix config key namespace / namespace_map: %w", ns, err)
	case err != nil:
		return backend.CreateResult{}, b.apiError(err, "the remote cluster refused pod %s", remoteID)
	}
	b.markCreated(uid, got)
	owner := metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: got.Name, UID: got.UID}
	for _, o := range objs {
		if err := b.createObject(ctx, ns, o, owner); err != nil {
			return backend.CreateResult{}, err
		}
	}
	start = time.Now()
	_, err = b.cli.CoreV1().Pods(ns).Patch(ctx, name, types.JSONPatchType,
		[]byte(`[{"op":"test","path":"/spec/schedulingGates","value":[{"name":"`+gateName+`"}]},{"op":"remove","path":"/spec/schedulingGates"}]`),
		metav1.PatchOptions{})
	b.metrics.observe("ungate_pod", start, err)
	if err != nil {
		return backend.CreateResult{}, b.apiError(err, "cannot release the remote pod %s to its scheduler", remoteID)
	}
	return backend.CreateResult{RemoteID: remoteID}, nil
}

func gated(p *v1.Pod) bool {
	for _, g := range p.Spec.SchedulingGates {
		if g.Name == gateName {
			return true
		}
	}
	return false
}

// createObject creates one ConfigMap or Secret owned by the remote pod; one that exists already (a Create
// retried) is updated to the same content and owner.
func (b *Backend) createObject(ctx context.Context, ns string, o remoteObject, owner metav1.OwnerReference) error {
	start := time.Now()
	var err error
	if o.cm != nil {
		o.cm.OwnerReferences = []metav1.OwnerReference{owner}
		_, err = b.cli.CoreV1().ConfigMaps(ns).Create(ctx, o.cm, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			_, err = b.cli.CoreV1().ConfigMaps(ns).Update(ctx, o.cm, metav1.UpdateOptions{})
		}
		b.metrics.observe("create_configmap", start, err)
		if err != nil {
			return b.apiError(err, "cannot create the remote ConfigMap %s/%s", ns, o.cm.Name)
		}
		return nil
	}
	o.secret.OwnerReferences = []metav1.OwnerReference{owner}
	_, err = b.cli.CoreV1().Secrets(ns).Create(ctx, o.secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = b.cli.CoreV1().Secrets(ns).Update(ctx, o.secret, metav1.UpdateOptions{})
	}
	b.metrics.observe("create_secret", start, err)
	if err != nil {
		return b.apiError(err, "cannot create the remote Secret %s/%s", ns, o.secret.Name)
	}
	return nil
}

// remotePod rewrites p for the remote cluster: its own name, namespace, labels and annotations; no local node,
// service account, token, scheduling constraints or pull secrets; the config's node selector, tolerations and
// priority class; env resolved from what interLink sent; every configMap, secret and computed projected or
// downward API volume pointing at a remote object made from interLink's data (returned beside).
// remoteMeta is the remote pod's metadata: its name, the backend's labels, and the local pod's annotations
// less the local dispatcher's own (its routing is not the remote side's), then the config's.
func (b *Backend) remoteMeta(p *v1.Pod, name, ns string) metav1.ObjectMeta {
	meta := metav1.ObjectMeta{Name: name, Namespace: ns, Labels: b.labels(p), Annotations: map[string]string{}}
	for k, v := range p.Annotations {
		if !strings.HasPrefix(k, labelPrefix) && !strings.HasPrefix(k, "kubectl.kubernetes.io/") {
			meta.Annotations[k] = v
		}
	}
	for k, v := range b.annotations(p) {
		meta.Annotations[k] = v
	}
	return meta
}

// remoteSpec is p's spec rewritten for the remote side, before its volumes and env: no local node, service
// account or scheduling of the local cluster; the config's node selector, tolerations and priority class;
// behind the backend's scheduling gate.
func (b *Backend) remoteSpec(p *v1.Pod) *v1.PodSpec {
	s := p.Spec.DeepCopy()
	s.NodeName = ""
	s.ServiceAccountName, s.DeprecatedServiceAccount = "", ""
	f := false
	s.AutomountServiceAccountToken = &f
	s.EnableServiceLinks = &f // the remote namespace's services are not the pod's
	s.NodeSelector = copyMap(b.cfg.NodeSelector)
	s.Tolerations = append([]v1.Toleration(nil), b.cfg.Tolerations...)
	s.Affinity, s.TopologySpreadConstraints = nil, nil
	s.PriorityClassName, s.Priority, s.PreemptionPolicy = b.cfg.PriorityClass, nil, nil
	s.SchedulerName, s.ImagePullSecrets, s.ReadinessGates, s.Overhead = "", nil, nil, nil
	s.SchedulingGates = []v1.PodSchedulingGate{{Name: gateName}}
	s.ResourceClaims = nil
	if s.Hostname == "" && len(validation.IsDNS1123Label(p.Name)) == 0 {
		s.Hostname = p.Name // the pod sees its own name, as it would locally
	}
	return s
}

// remoteEnvs sets every container's env of s to the literal values resolved from p's (remoteEnv) and returns
// what could not be resolved.
func remoteEnvs(p *v1.Pod, s *v1.PodSpec, objs *pod.Objects) pod.Problems {
	var problems pod.Problems
	for _, list := range []struct {
		field string
		cs    []v1.Container
	}{{"spec.initContainers", s.InitContainers}, {"spec.containers", s.Containers}} {
		for i := range list.cs {
			c := &list.cs[i]
			env, err := remoteEnv(p, c, objs)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s[%d].env: %v", list.field, i, err))
				continue
			}
			c.Env, c.EnvFrom = env, nil
		}
	}
	return problems
}

func (b *Backend) remotePod(p *v1.Pod, objs *pod.Objects, name, ns string) (*v1.Pod, []remoteObject, error) {
	meta := b.remoteMeta(p, name, ns)
	s := b.remoteSpec(p)
	var out []remoteObject
	made := map[string]bool{}
	add := func(o remoteObject) {
		n := ""
		if o.cm != nil {
			n = "cm/" + o.cm.Name
		} else {
			n = "s/" + o.secret.Name
		}
		if !made[n] {
			made[n] = true
			out = append(out, o)
		}
	}
	objMeta := func(kind, local string) metav1.ObjectMeta {
		m := metav1.ObjectMeta{Name: objectName(name, kindLetter(kind), local), Namespace: ns, Labels: b.labels(p),
			Annotations: b.annotations(p)}
		m.Annotations[annotationObject] = kind + "/" + local
		return m
	}
	configMap := func(path, local string, optional *bool) (string, error) {
		cm, ok := objs.ConfigMaps[local]
		if !ok {
			if optional != nil && *optional {
				return objectName(name, objConfigMap, local), nil // an optional object that is absent there too
			}
			return "", fmt.Errorf("%s: configMap %s was not sent with the pod", path, pod.Quote(local))
		}
		add(remoteObject{cm: &v1.ConfigMap{ObjectMeta: objMeta("configMap", local), Data: cm.Data, BinaryData: cm.BinaryData}})
		return objectName(name, objConfigMap, local), nil
	}
	secret := func(path, local string, optional *bool) (string, error) {
		sec, ok := objs.Secrets[local]
		if !ok {
			if optional != nil && *optional {
				return objectName(name, objSecret, local), nil
			}
			return "", fmt.Errorf("%s: secret %s was not sent with the pod", path, pod.Quote(local))
		}
		data := map[string][]byte{}
		for k, v := range sec.Data {
			data[k] = v
		}
		for k, v := range sec.StringData {
			data[k] = []byte(v)
		}
		add(remoteObject{secret: &v1.Secret{ObjectMeta: objMeta("secret", local), Type: v1.SecretTypeOpaque, Data: data}})
		return objectName(name, objSecret, local), nil
	}
	var problems pod.Problems
	for i := range s.Volumes {
		v := &s.Volumes[i]
		path := fmt.Sprintf("spec.volumes[%d]", i)
		var err error
		switch {
		case v.ConfigMap != nil:
			v.ConfigMap.Name, err = configMap(path+".configMap.name", v.ConfigMap.Name, v.ConfigMap.Optional)
		case v.Secret != nil:
			v.Secret.SecretName, err = secret(path+".secret.secretName", v.Secret.SecretName, v.Secret.Optional)
		case v.Projected != nil || v.DownwardAPI != nil:
			if m, ok := objs.Projected[v.Name]; ok {
				// interLink computed the files (the service-account token, the downward API of the local
				// pod): they become a Secret, as the remote side can mint neither.
				var mode *int32
				if v.Projected != nil {
					mode = v.Projected.DefaultMode
				} else {
					mode = v.DownwardAPI.DefaultMode
				}
				sec, items := filesSecret(objMeta("volume", v.Name), m)
				add(remoteObject{secret: sec})
				v.VolumeSource = v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: sec.Name, Items: items, DefaultMode: mode}}
				continue
			}
			if v.Projected == nil {
				continue // a downward API volume the remote kubelet computes
			}
			var kept []v1.VolumeProjection
			for j := range v.Projected.Sources {
				src := v.Projected.Sources[j]
				sp := fmt.Sprintf("%s.projected.sources[%d]", path, j)
				switch {
				case src.ConfigMap != nil:
					src.ConfigMap = src.ConfigMap.DeepCopy()
					src.ConfigMap.Name, err = configMap(sp+".configMap.name", src.ConfigMap.Name, src.ConfigMap.Optional)
				case src.Secret != nil:
					src.Secret = src.Secret.DeepCopy()
					src.Secret.Name, err = secret(sp+".secret.name", src.Secret.Name, src.Secret.Optional)
				case src.ServiceAccountToken != nil:
					continue // only the local cluster can mint it, and interLink sent no file for it
				case src.DownwardAPI != nil:
				default:
					err = fmt.Errorf("%s: this projection cannot be made on the remote cluster without interLink's projected volume map", sp)
				}
				if err != nil {
					break
				}
				kept = append(kept, src)
			}
			v.Projected.Sources = kept
		}
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	problems = append(problems, remoteEnvs(p, s, objs)...)
	if len(problems) > 0 {
		return nil, nil, &backend.Error{Kind: backend.KindInvalid, Msg: problems.Error(), Err: problems}
	}
	return &v1.Pod{ObjectMeta: meta, Spec: *s}, out, nil
}

func kindLetter(kind string) string {
	switch kind {
	case "configMap":
		return objConfigMap
	case "secret":
		return objSecret
	}
	return objVolume
}

// filesSecret is a Secret holding files (path → content) and the items that put each back at its path: a
// Secret key cannot hold a '/', so each file gets key f<i> in path order.
func filesSecret(meta metav1.ObjectMeta, m *v1.ConfigMap) (*v1.Secret, []v1.KeyToPath) {
	files := map[string][]byte{}
	for k, v := range m.Data {
		files[k] = []byte(v)
	}
	for k, v := range m.BinaryData {
		files[k] = v
	}
	paths := make([]string, 0, len(files))
	for k := range files {
		paths = append(paths, k)
	}
	sort.Strings(paths)
	sec := &v1.Secret{ObjectMeta: meta, Type: v1.SecretTypeOpaque, Data: map[string][]byte{}}
	items := make([]v1.KeyToPath, 0, len(paths))
	for i, p := range paths {
		key := fmt.Sprintf("f%d", i)
		sec.Data[key] = files[p]
		items = append(items, v1.KeyToPath{Key: key, Path: p})
	}
	return sec, items
}

// remoteFieldRefs are the downward API fields only the remote side knows: they stay references.
var remoteFieldRefs = map[string]bool{"status.podIP": true, "status.podIPs": true, "status.hostIP": true,
	"status.hostIPs": true, "spec.nodeName": true}

// remoteEnv is c's environment as the local pod would have it, each value literal ($ escaped, so that the
// remote kubelet expands nothing twice), but for the fields only the remote node knows (its IPs, its name).
func remoteEnv(p *v1.Pod, c *v1.Container, objs *pod.Objects) ([]v1.EnvVar, error) {
	resolved, err := pod.ResolveEnv(p, c, objs)
	if err != nil {
		return nil, err
	}
	keep := map[string]*v1.EnvVarSource{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && remoteFieldRefs[e.ValueFrom.FieldRef.FieldPath] {
			keep[e.Name] = e.ValueFrom
		} else {
			delete(keep, e.Name)
		}
	}
	out := make([]v1.EnvVar, 0, len(resolved))
	for _, e := range resolved {
		if src, ok := keep[e.Name]; ok {
			out = append(out, v1.EnvVar{Name: e.Name, ValueFrom: src})
			continue
		}
		out = append(out, v1.EnvVar{Name: e.Name, Value: strings.ReplaceAll(e.Value, "$", "$$")})
	}
	return out, nil
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// apiError turns a remote API error into a backend error of the right kind: the pod refused (422, 400, 403
// by an admission policy) is invalid, an API server that does not answer is unavailable.
func (b *Backend) apiError(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...) + ": " + err.Error()
	switch {
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsForbidden(err) && !strings.Contains(err.Error(), "cannot "):
		return &backend.Error{Kind: backend.KindInvalid, Msg: msg, Err: err}
	case apierrors.IsNotFound(err):
		return &backend.Error{Kind: backend.KindNotFound, Msg: msg, Err: err}
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsUnexpectedServerError(err) || isConnError(err):
		return &backend.Error{Kind: backend.KindUnavailable, Msg: msg, Err: err}
	}
	return &backend.Error{Kind: backend.KindInternal, Msg: msg, Err: err}
}

func isConnError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "no such host") ||
		strings.Contains(s, "i/o timeout") || strings.Contains(s, "EOF") || strings.Contains(s, "context deadline exceeded")
}
