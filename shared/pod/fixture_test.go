package pod

import (
	"encoding/json"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// defaultPodJSON is a pod as interLink's virtual kubelet sends it: with every default the API server fills in
// (imagePullPolicy, dnsPolicy, terminationMessage*, the kube-api-access projected volume, tolerations...).
const defaultPodJSON = `{
  "metadata": {"name": "web", "namespace": "team-a", "uid": "0b7c5e5e-4a7e-4d43-9d51-2f4c1f3b8a11",
    "labels": {"app": "web"}, "annotations": {"interlink.eu/pod-ip": "10.0.0.7", "JobID": "x"}},
  "spec": {
    "volumes": [{"name": "kube-api-access-4kx9z", "projected": {"defaultMode": 420, "sources": [
      {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
      {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
      {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}],
    "containers": [{"name": "main", "image": "busybox:latest", "command": ["sh", "-c", "echo hi"],
      "resources": {}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
      "imagePullPolicy": "Always",
      "volumeMounts": [{"name": "kube-api-access-4kx9z", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
    "serviceAccountName": "default", "serviceAccount": "default", "nodeName": "interlink-node",
    "securityContext": {}, "schedulerName": "default-scheduler",
    "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
      {"key": "virtual-node.interlink/no-schedule", "operator": "Exists"}],
    "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
  },
  "status": {"phase": "Pending", "qosClass": "BestEffort"}
}`

func defaultPod(t *testing.T) *v1.Pod {
	t.Helper()
	var p v1.Pod
	if err := json.Unmarshal([]byte(defaultPodJSON), &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// minimalCaps is what the most limited backend declares and still runs default pods.
var minimalCaps = backend.Capabilities{
	VolumeKinds: []string{KindProjected, KindConfigMap, KindSecret},
	Features:    []string{backend.FeatureRestartPolicyAlways},
}

// fullCaps declares everything the Docker backend does.
var fullCaps = backend.Capabilities{
	VolumeKinds: []string{KindConfigMap, KindSecret, KindProjected, KindDownwardAPI, KindEmptyDir, KindHostPath},
	Features: []string{backend.FeatureInitContainers, backend.FeatureMultipleContainers, backend.FeatureSharedLocalhost,
		backend.FeaturePorts, backend.FeatureEmptyDirMemory, backend.FeatureSubPath, backend.FeatureRunAsUser,
		backend.FeatureRunAsGroup, backend.FeaturePrivileged, backend.FeatureReadOnlyRootFS, backend.FeatureCapabilities,
		backend.FeatureImagePullPolicy, backend.FeatureRestartPolicyAlways, backend.FeatureRestartPolicyOnFailure,
		backend.FeatureTerminationGrace, FeatureNoNewPrivileges},
	ExtendedResources: []string{"nvidia.com/gpu"},
}
