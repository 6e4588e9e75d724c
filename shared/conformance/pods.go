package conformance

import (
	"crypto/rand"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// Defaults of the pods the helpers build.
const (
	DefaultImage     = "busybox:latest"
	DefaultNamespace = "conformance"
	// ScenarioLabel names the scenario on every pod the harness makes, so that a leftover is easy to trace.
	ScenarioLabel = "conformance.interlink.eu/scenario"
)

// NewUID returns a random RFC 4122 version 4 UID, as the API server gives pods.
func NewUID() types.UID {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// NewPod returns a pod named after name with a fresh UID (its first 8 characters end the name, so that
// pods of concurrent runs never collide), restartPolicy Never, a 2 s grace period and the given containers.
func NewPod(name string, containers ...v1.Container) *v1.Pod {
	uid := NewUID()
	grace := int64(2)
	return &v1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              fmt.Sprintf("%s-%s", strings.ToLower(name), uid[:8]),
			Namespace:         DefaultNamespace,
			UID:               uid,
			Labels:            map[string]string{"app": "conformance", ScenarioLabel: name},
			Annotations:       map[string]string{},
			CreationTimestamp: metav1.Now(),
		},
		Spec: v1.PodSpec{
			Containers:                    containers,
			RestartPolicy:                 v1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &grace,
		},
	}
}

// ShellContainer returns a busybox container that runs script with sh -c.
func ShellContainer(name, script string) v1.Container {
	return v1.Container{
		Name:            name,
		Image:           DefaultImage,
		ImagePullPolicy: v1.PullIfNotPresent,
		Command:         []string{"sh", "-c", script},
	}
}

// WithInit adds init containers to pod and returns it.
func WithInit(pod *v1.Pod, inits ...v1.Container) *v1.Pod {
	pod.Spec.InitContainers = append(pod.Spec.InitContainers, inits...)
	return pod
}

// WithVolumes adds volumes to pod and returns it.
func WithVolumes(pod *v1.Pod, vols ...v1.Volume) *v1.Pod {
	pod.Spec.Volumes = append(pod.Spec.Volumes, vols...)
	return pod
}

// Mount adds a volume mount to c and returns it; subPath may be empty.
func Mount(c v1.Container, volume, path, subPath string, readOnly bool) v1.Container {
	c.VolumeMounts = append(c.VolumeMounts, v1.VolumeMount{Name: volume, MountPath: path, SubPath: subPath,
		ReadOnly: readOnly})
	return c
}

// EmptyDirVolume returns an emptyDir volume.
func EmptyDirVolume(name string) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}
}

// KeyToPaths builds the items of a configMap or secret volume from key, path pairs.
func KeyToPaths(keyPath ...string) []v1.KeyToPath {
	var items []v1.KeyToPath
	for i := 0; i+1 < len(keyPath); i += 2 {
		items = append(items, v1.KeyToPath{Key: keyPath[i], Path: keyPath[i+1]})
	}
	return items
}

// ConfigMapVolume returns a volume of the configMap cm; items may be nil (every key becomes a file).
func ConfigMapVolume(name, cm string, items []v1.KeyToPath) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: cm}, Items: items}}}
}

// SecretVolume returns a volume of the secret s; items may be nil (every key becomes a file).
func SecretVolume(name, s string, items []v1.KeyToPath) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: s,
		Items: items}}}
}

// ServiceAccountVolume returns the projected volume Kubernetes adds to every pod (kube-api-access-*): a
// service-account token, the cluster CA from the kube-root-ca.crt configMap and the namespace from the
// downward API. interLink sends its files ready-made in projectedvolumemaps; see ServiceAccountFiles.
func ServiceAccountVolume(name string) v1.Volume {
	expiry := int64(3607)
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
		Sources: []v1.VolumeProjection{
			{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &expiry}},
			{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: KeyToPaths("ca.crt", "ca.crt")}},
			{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}}
}

// TestCACert is a PEM certificate of several lines: a backend must keep its newlines intact.
const TestCACert = `-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAjMSEwHwYDVQQDDBhrM3Mtc2Vy
dmVyLWNhQDE3MDAwMDAwMDAwHhcNMjMxMTE0MjIxMzIwWhcNMzMxMTExMjIxMzIw
WjAjMSEwHwYDVQQDDBhrM3Mtc2VydmVyLWNhQDE3MDAwMDAwMDAwWTATBgcqhkjO
PQIBBggqhkjOPQMBBwNCAAQ3SZ0wXl0e3Dqg5l7bW2N3n0jZ6H0n0xX9b0m1m7o1
-----END CERTIFICATE-----
`

// ServiceAccountFiles are the files interLink sends for a ServiceAccountVolume of a pod in namespace.
func ServiceAccountFiles(namespace string) map[string]string {
	return map[string]string{
		"token":     "eyJhbGciOiJSUzI1NiIsImtpZCI6ImNvbmZvcm1hbmNlIn0.eyJzdWIiOiJjb25mb3JtYW5jZSJ9.c2lnbmF0dXJl",
		"ca.crt":    TestCACert,
		"namespace": namespace,
	}
}

// FieldRefEnv returns an env var whose value the backend must resolve from the pod's field path, as
// interLink may leave it.
func FieldRefEnv(name, fieldPath string) v1.EnvVar {
	return v1.EnvVar{Name: name, ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1",
		FieldPath: fieldPath}}}
}

// Objects are what a pod's volumes refer to, which interLink sends with the pod.
type Objects struct {
	ConfigMaps []v1.ConfigMap
	Secrets    []v1.Secret
	// Projected holds the files of each projected or downwardAPI pod volume, by the volume's name.
	Projected map[string]map[string]string
}

// NewConfigMap returns a configMap in the pod's namespace.
func NewConfigMap(namespace, name string, data map[string]string) v1.ConfigMap {
	return v1.ConfigMap{TypeMeta: metav1.TypeMeta{Kind: "ConfigMap", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: data}
}

// NewSecret returns an Opaque secret in the pod's namespace.
func NewSecret(namespace, name string, data map[string][]byte) v1.Secret {
	return v1.Secret{TypeMeta: metav1.TypeMeta{Kind: "Secret", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: data, Type: v1.SecretTypeOpaque}
}

// NewCreateRequest builds the create request interLink would send for pod: one RetrievedContainer per init
// container then per container, in spec order, each carrying the configMaps, secrets and projected
// volume maps that this container mounts (an object mounted by two containers comes twice), and emptyDirs
// null. An object a mounted volume names but objs lacks is left out, as interLink would fail earlier.
func NewCreateRequest(pod *v1.Pod, objs Objects) backend.CreateRequest {
	vols := map[string]v1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	cms := map[string]v1.ConfigMap{}
	for _, cm := range objs.ConfigMaps {
		cms[cm.Name] = cm
	}
	secrets := map[string]v1.Secret{}
	for _, s := range objs.Secrets {
		secrets[s.Name] = s
	}
	req := backend.CreateRequest{Pod: pod}
	all := append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		rc := interlink.RetrievedContainer{Name: c.Name}
		seen := map[string]bool{}
		for _, m := range c.VolumeMounts {
			if seen[m.Name] {
				continue
			}
			seen[m.Name] = true
			v, ok := vols[m.Name]
			if !ok {
				continue
			}
			switch {
			case v.ConfigMap != nil:
				if cm, ok := cms[v.ConfigMap.Name]; ok {
					rc.ConfigMaps = append(rc.ConfigMaps, cm)
				}
			case v.Secret != nil:
				if s, ok := secrets[v.Secret.SecretName]; ok {
					rc.Secrets = append(rc.Secrets, s)
				}
			case v.Projected != nil || v.DownwardAPI != nil:
				if files, ok := objs.Projected[v.Name]; ok {
					rc.ProjectedVolumeMaps = append(rc.ProjectedVolumeMaps, v1.ConfigMap{
						TypeMeta:   metav1.TypeMeta{Kind: "ConfigMap", APIVersion: "v1"},
						ObjectMeta: metav1.ObjectMeta{Name: v.Name, Namespace: pod.Namespace},
						Data:       files,
					})
				}
			}
		}
		req.Containers = append(req.Containers, rc)
	}
	return req
}
