package client

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// builder reproduces what interLink does between a pod's admission and the plugin's /create: its virtual
// kubelet gathers the objects the pod's volumes name (remoteExecutionHandleVolumes) and flattens envFrom
// (resolveEnvFromRefs), and its API server hands each container the objects it mounts (getData,
// retrieveData). Where interLink would wait for an object that does not exist, the builder fails at once.
type builder struct {
	m    *Manifests
	p    *v1.Pod
	warn func(string)
	// The pod-level lists the virtual kubelet sends to interLink's API server.
	configMaps []v1.ConfigMap
	secrets    []v1.Secret
	projected  []v1.ConfigMap
}

func (b *builder) configMap(name string) (*v1.ConfigMap, bool) {
	for i := range b.m.ConfigMaps {
		cm := &b.m.ConfigMaps[i]
		if cm.Name == name && (cm.Namespace == "" || cm.Namespace == b.p.Namespace) {
			out := cm.DeepCopy()
			out.Namespace = b.p.Namespace
			return out, true
		}
	}
	return nil, false
}

func (b *builder) secret(name string) (*v1.Secret, bool) {
	for i := range b.m.Secrets {
		s := &b.m.Secrets[i]
		if s.Name == name && (s.Namespace == "" || s.Namespace == b.p.Namespace) {
			out := s.DeepCopy()
			out.Namespace = b.p.Namespace
			return out, true
		}
	}
	return nil, false
}

func (b *builder) missing(kind, name, where string) error {
	var have []string
	switch kind {
	case "ConfigMap":
		for _, cm := range b.m.ConfigMaps {
			have = append(have, cm.Name)
		}
	case "Secret":
		for _, s := range b.m.Secrets {
			have = append(have, s.Name)
		}
	}
	given := "none was given"
	if len(have) > 0 {
		given = "given: " + strings.Join(have, ", ")
	}
	return fmt.Errorf("pod %s: %s names the %s %q, which is not in the manifests (%s); add it to the file or in another -f file, or mark it optional: true",
		b.p.Name, where, kind, name, given)
}

func (b *builder) build() (*interlink.RetrievedPodData, error) {
	if err := b.volumes(); err != nil {
		return nil, err
	}
	for _, cs := range []*[]v1.Container{&b.p.Spec.InitContainers, &b.p.Spec.Containers} {
		for i := range *cs {
			c := &(*cs)[i]
			if err := b.envFrom(c); err != nil {
				return nil, err
			}
			if err := b.envRefs(c); err != nil {
				return nil, err
			}
		}
	}
	out := &interlink.RetrievedPodData{Pod: *b.p}
	for _, cs := range [][]v1.Container{b.p.Spec.InitContainers, b.p.Spec.Containers} {
		for _, c := range cs {
			rc, err := b.container(c)
			if err != nil {
				return nil, err
			}
			out.Containers = append(out.Containers, rc)
		}
	}
	return out, nil
}

// volumes gathers the objects of the pod's volumes, as remoteExecutionHandleVolumes does.
func (b *builder) volumes() error {
	for i := range b.p.Spec.Volumes {
		vol := &b.p.Spec.Volumes[i]
		where := fmt.Sprintf("volume %s", vol.Name)
		switch {
		case vol.ConfigMap != nil:
			cm, ok := b.configMap(vol.ConfigMap.Name)
			if !ok {
				if isTrue(vol.ConfigMap.Optional) {
					continue
				}
				return b.missing("ConfigMap", vol.ConfigMap.Name, where)
			}
			if err := b.checkItems(where, "ConfigMap", cm.Name, vol.ConfigMap.Items, vol.ConfigMap.Optional, func(k string) bool {
				_, a := cm.Data[k]
				_, bin := cm.BinaryData[k]
				return a || bin
			}); err != nil {
				return err
			}
			b.configMaps = append(b.configMaps, *cm)
		case vol.Secret != nil:
			s, ok := b.secret(vol.Secret.SecretName)
			if !ok {
				if isTrue(vol.Secret.Optional) {
					continue
				}
				return b.missing("Secret", vol.Secret.SecretName, where)
			}
			if err := b.checkItems(where, "Secret", s.Name, vol.Secret.Items, vol.Secret.Optional, func(k string) bool {
				_, ok := s.Data[k]
				return ok
			}); err != nil {
				return err
			}
			b.secrets = append(b.secrets, *s)
		case vol.Projected != nil:
			pm := v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: vol.Name}, Data: map[string]string{}}
			for _, src := range vol.Projected.Sources {
				if err := b.projectedSource(where, src, &pm); err != nil {
					return err
				}
			}
			b.projected = append(b.projected, pm)
		case vol.DownwardAPI != nil:
			pm := v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: vol.Name}, Data: map[string]string{}}
			b.downwardAPI(where, vol.DownwardAPI.Items, &pm)
			b.projected = append(b.projected, pm)
			// The virtual kubelet sends a downwardAPI volume as the projected volume it is equivalent to.
			vol.VolumeSource = v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
				DefaultMode: vol.DownwardAPI.DefaultMode,
				Sources:     []v1.VolumeProjection{{DownwardAPI: &v1.DownwardAPIProjection{Items: vol.DownwardAPI.Items}}},
			}}
		case vol.EmptyDir != nil:
			// The backends make emptyDirs themselves.
		case vol.HostPath != nil:
			// Passed on as it is: whether a backend allows it is its policy's decision.
		default:
			b.warn(fmt.Sprintf("pod %s: volume %s is of a kind interLink does not pass on (only configMap, secret, projected, downwardAPI, emptyDir and hostPath are)", b.p.Name, vol.Name))
		}
	}
	return nil
}

func (b *builder) checkItems(where, kind, name string, items []v1.KeyToPath, optional *bool, has func(string) bool) error {
	for _, it := range items {
		if !has(it.Key) && !isTrue(optional) {
			return fmt.Errorf("pod %s: %s asks for key %q of the %s %q, which has no such key", b.p.Name, where, it.Key, kind, name)
		}
	}
	return nil
}

// projectedSource fills pm from one source of a projected volume, as remoteExecutionHandleProjectedSource
// does; Secret sources, which that version of interLink drops, are resolved too.
func (b *builder) projectedSource(where string, src v1.VolumeProjection, pm *v1.ConfigMap) error {
	switch {
	case src.ServiceAccountToken != nil:
		b.warn(fmt.Sprintf("pod %s: %s asks for a service account token, which only Kubernetes issues; the file %s is left out", b.p.Name, where, src.ServiceAccountToken.Path))
	case src.ConfigMap != nil:
		cm, ok := b.configMap(src.ConfigMap.Name)
		if !ok {
			if isTrue(src.ConfigMap.Optional) {
				return nil
			}
			return b.missing("ConfigMap", src.ConfigMap.Name, where)
		}
		if len(src.ConfigMap.Items) == 0 {
			for k, v := range cm.Data {
				pm.Data[k] = v
			}
			for k, v := range cm.BinaryData {
				pm.Data[k] = string(v)
			}
			return nil
		}
		for _, it := range src.ConfigMap.Items {
			v, ok := cm.Data[it.Key]
			if !ok {
				if bin, okb := cm.BinaryData[it.Key]; okb {
					v, ok = string(bin), true
				}
			}
			if !ok {
				if isTrue(src.ConfigMap.Optional) {
					continue
				}
				return fmt.Errorf("pod %s: %s asks for key %q of the ConfigMap %q, which has no such key", b.p.Name, where, it.Key, cm.Name)
			}
			pm.Data[it.Path] = v
		}
	case src.Secret != nil:
		s, ok := b.secret(src.Secret.Name)
		if !ok {
			if isTrue(src.Secret.Optional) {
				return nil
			}
			return b.missing("Secret", src.Secret.Name, where)
		}
		if len(src.Secret.Items) == 0 {
			for k, v := range s.Data {
				pm.Data[k] = string(v)
			}
			return nil
		}
		for _, it := range src.Secret.Items {
			v, ok := s.Data[it.Key]
			if !ok {
				if isTrue(src.Secret.Optional) {
					continue
				}
				return fmt.Errorf("pod %s: %s asks for key %q of the Secret %q, which has no such key", b.p.Name, where, it.Key, s.Name)
			}
			pm.Data[it.Path] = string(v)
		}
	case src.DownwardAPI != nil:
		b.downwardAPI(where, src.DownwardAPI.Items, pm)
	case src.ClusterTrustBundle != nil:
		b.warn(fmt.Sprintf("pod %s: %s asks for a cluster trust bundle, which only Kubernetes has; left out", b.p.Name, where))
	}
	return nil
}

// downwardAPI fills pm with the pod fields items name, as populateProjectedVolumeFromDownwardAPI does.
func (b *builder) downwardAPI(where string, items []v1.DownwardAPIVolumeFile, pm *v1.ConfigMap) {
	for _, it := range items {
		if it.FieldRef == nil {
			b.warn(fmt.Sprintf("pod %s: %s file %s: only fieldRef items are filled, as interLink does", b.p.Name, where, it.Path))
			continue
		}
		v, ok := fieldPath(b.p, it.FieldRef.FieldPath)
		if !ok {
			b.warn(fmt.Sprintf("pod %s: %s file %s: the field %s is not one interLink fills; left out", b.p.Name, where, it.Path, it.FieldRef.FieldPath))
			continue
		}
		pm.Data[it.Path] = v
	}
}

func fieldPath(p *v1.Pod, path string) (string, bool) {
	switch path {
	case "metadata.name":
		return p.Name, true
	case "metadata.namespace":
		return p.Namespace, true
	case "metadata.uid":
		return string(p.UID), true
	case "metadata.labels":
		return formatMap(p.Labels), true
	case "metadata.annotations":
		return formatMap(p.Annotations), true
	case "spec.nodeName":
		return p.Spec.NodeName, true
	case "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, true
	case "status.podIP":
		return p.Status.PodIP, true
	case "status.hostIP":
		return p.Status.HostIP, true
	}
	return "", false
}

// formatMap is the downward API's form of labels and annotations: key="value" lines, sorted.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(k + "=" + strconv.Quote(m[k]) + "\n")
	}
	return sb.String()
}

// envFrom flattens c.EnvFrom into c.Env as resolveEnvFromRefs does: a variable of env wins over one of
// envFrom, and keys come in sorted order.
func (b *builder) envFrom(c *v1.Container) error {
	if len(c.EnvFrom) == 0 {
		return nil
	}
	explicit := map[string]bool{}
	index := map[string]int{}
	for i, e := range c.Env {
		explicit[e.Name] = true
		index[e.Name] = i
	}
	upsert := func(name, value string) {
		if explicit[name] {
			return
		}
		if i, ok := index[name]; ok {
			c.Env[i].Value = value
			return
		}
		index[name] = len(c.Env)
		c.Env = append(c.Env, v1.EnvVar{Name: name, Value: value})
	}
	where := fmt.Sprintf("container %s envFrom", c.Name)
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := b.configMap(from.ConfigMapRef.Name)
			if !ok {
				if isTrue(from.ConfigMapRef.Optional) {
					continue
				}
				return b.missing("ConfigMap", from.ConfigMapRef.Name, where)
			}
			for _, k := range sortedKeys(cm.Data) {
				upsert(from.Prefix+k, cm.Data[k])
			}
		case from.SecretRef != nil:
			s, ok := b.secret(from.SecretRef.Name)
			if !ok {
				if isTrue(from.SecretRef.Optional) {
					continue
				}
				return b.missing("Secret", from.SecretRef.Name, where)
			}
			keys := make([]string, 0, len(s.Data))
			for k := range s.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				upsert(from.Prefix+k, string(s.Data[k]))
			}
		}
	}
	c.EnvFrom = nil
	return nil
}

// envRefs resolves configMapKeyRef and secretKeyRef values, which the dispatcher cannot read without the
// objects; fieldRef and resourceFieldRef are left for the dispatcher, which computes them from the pod.
func (b *builder) envRefs(c *v1.Container) error {
	for i := range c.Env {
		e := &c.Env[i]
		if e.ValueFrom == nil {
			continue
		}
		where := fmt.Sprintf("container %s env %s", c.Name, e.Name)
		switch ref := e.ValueFrom; {
		case ref.ConfigMapKeyRef != nil:
			k := ref.ConfigMapKeyRef
			cm, ok := b.configMap(k.Name)
			if !ok {
				if isTrue(k.Optional) {
					e.ValueFrom = nil
					continue
				}
				return b.missing("ConfigMap", k.Name, where)
			}
			v, ok := cm.Data[k.Key]
			if !ok && !isTrue(k.Optional) {
				return fmt.Errorf("pod %s: %s asks for key %q of the ConfigMap %q, which has no such key", b.p.Name, where, k.Key, k.Name)
			}
			e.Value, e.ValueFrom = v, nil
		case ref.SecretKeyRef != nil:
			k := ref.SecretKeyRef
			s, ok := b.secret(k.Name)
			if !ok {
				if isTrue(k.Optional) {
					e.ValueFrom = nil
					continue
				}
				return b.missing("Secret", k.Name, where)
			}
			v, ok := s.Data[k.Key]
			if !ok && !isTrue(k.Optional) {
				return fmt.Errorf("pod %s: %s asks for key %q of the Secret %q, which has no such key", b.p.Name, where, k.Key, k.Name)
			}
			e.Value, e.ValueFrom = string(v), nil
		}
	}
	return nil
}

// container is what interLink's API server gives one container: the objects of the volumes it mounts, in
// mount order (retrieveData).
func (b *builder) container(c v1.Container) (interlink.RetrievedContainer, error) {
	rc := interlink.RetrievedContainer{Name: c.Name}
	for _, mnt := range c.VolumeMounts {
		var vol *v1.Volume
		for i := range b.p.Spec.Volumes {
			if b.p.Spec.Volumes[i].Name == mnt.Name {
				vol = &b.p.Spec.Volumes[i]
				break
			}
		}
		if vol == nil {
			return rc, fmt.Errorf("pod %s: container %s mounts the volume %q, which spec.volumes does not define", b.p.Name, c.Name, mnt.Name)
		}
		switch {
		case vol.ConfigMap != nil:
			for _, cm := range b.configMaps {
				if cm.Name == vol.ConfigMap.Name {
					rc.ConfigMaps = append(rc.ConfigMaps, cm)
					break
				}
			}
		case vol.Secret != nil:
			for _, s := range b.secrets {
				if s.Name == vol.Secret.SecretName {
					rc.Secrets = append(rc.Secrets, s)
					break
				}
			}
		case vol.Projected != nil:
			for _, pm := range b.projected {
				if pm.Name == vol.Name {
					rc.ProjectedVolumeMaps = append(rc.ProjectedVolumeMaps, pm)
					break
				}
			}
		}
	}
	return rc, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
