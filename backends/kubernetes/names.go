package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

const labelPrefix = pod.LabelPrefix

// Annotations on every remote object: the local pod's identity in full (a label value holds 63 characters at
// most, a pod name up to 253), and, on a ConfigMap or Secret, the local object it stands for.
const (
	annotationUID       = labelPrefix + "pod-uid"
	annotationNamespace = labelPrefix + "pod-namespace"
	annotationName      = labelPrefix + "pod-name"
	annotationObject    = labelPrefix + "object" // "configMap/<name>", "secret/<name>", "volume/<name>"
)

// gateName is the scheduling gate a remote pod is created with and loses once the objects it mounts exist and
// are owned by it: a pod never starts without its volumes, and an object never exists without its owner for
// longer than a Create.
const gateName = "dispatcher.interlink.eu/objects"

// plainUID is a UID that is itself a DNS-1123 label tail (every Kubernetes UID): it names the remote pod as
// it is. Any other UID the contract accepts (capitals, '_', '.', up to 128 characters) is hashed, under
// another prefix, so that the two schemes never meet.
var plainUID = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,58}[a-z0-9])?$`)

// remoteName is the remote pod's name for a local pod UID: deterministic, so that Create is idempotent and
// Delete, Status and Logs need nothing else, and collision-free across local namespaces and clusters (UIDs
// are unique).
func remoteName(uid string) string {
	if plainUID.MatchString(uid) {
		return "il-" + uid
	}
	return "ilh-" + hashOf(uid)
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// objectName is the remote name of the ConfigMap or Secret standing for local object kind/name of the pod
// remote podName: the pod's name, a kind letter and a hash of the local name (which may be 253 characters).
func objectName(podName, kind, name string) string {
	return podName + "-" + kind + "-" + hashOf(kind + "/" + name)[:16]
}

// labels are those of every remote object of pod p: the config's, then the backend's own (pod.Labels), less
// the values a label cannot hold (a name over 63 characters: the annotations have it).
func (b *Backend) labels(p *v1.Pod) map[string]string {
	l := map[string]string{}
	for k, v := range b.cfg.Labels {
		l[k] = v
	}
	for k, v := range pod.Labels(p, b.env.Instance, b.env.Name) {
		if len(validation.IsValidLabelValue(v)) == 0 {
			l[k] = v
		}
	}
	l[pod.LabelRole] = pod.RolePod
	return l
}

func (b *Backend) annotations(p *v1.Pod) map[string]string {
	a := map[string]string{}
	for k, v := range b.cfg.Annotations {
		a[k] = v
	}
	a[annotationUID] = string(p.UID)
	a[annotationNamespace] = p.Namespace
	a[annotationName] = p.Name
	return a
}

// selector selects every remote pod and object of this backend and dispatcher instance.
func (b *Backend) selector() string {
	return pod.LabelBackend + "=" + b.env.Name + "," + pod.LabelInstance + "=" + b.env.Instance
}
