package pod

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

func problems(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	if backend.KindOf(err) != backend.KindInvalid {
		t.Fatalf("error %v has kind %v, want invalid", err, backend.KindOf(err))
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %v carries no Problems", err)
	}
	return ps
}

func TestValidateDefaultPodPassesEveryBackend(t *testing.T) {
	for name, caps := range map[string]backend.Capabilities{"minimal": minimalCaps, "full": fullCaps} {
		if err := Validate(defaultPod(t), caps, name); err != nil {
			t.Errorf("%s: default pod refused: %v", name, err)
		}
	}
}

func TestValidateRefusesUndeclaredFeatures(t *testing.T) {
	yes := true
	cases := []struct {
		name   string
		mutate func(p *v1.Pod)
		want   string
	}{
		{"nfs volume at its mount", func(p *v1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "side", Image: "busybox:1.36",
				VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}}})
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{NFS: &v1.NFSVolumeSource{Server: "s", Path: "/x"}}})
		}, `spec.containers[1].volumeMounts[0]: volume kind "nfs" is not supported by backend "docker"`},
		{"hostNetwork", func(p *v1.Pod) { p.Spec.HostNetwork = true }, `spec.hostNetwork: hostNetwork is not supported by backend "docker"`},
		{"hostPID through the whitelist", func(p *v1.Pod) { p.Spec.HostPID = true }, `spec.hostPID: this field is not supported by backend "docker"`},
		{"ephemeral containers", func(p *v1.Pod) {
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "dbg"}}}
		}, `spec.ephemeralContainers: this field is not supported`},
		{"probes", func(p *v1.Pod) { p.Spec.Containers[0].LivenessProbe = &v1.Probe{} }, `spec.containers[0]: a probe is not supported by backend "docker"`},
		{"lifecycle", func(p *v1.Pod) { p.Spec.Containers[0].Lifecycle = &v1.Lifecycle{} }, `spec.containers[0].lifecycle: a lifecycle hook is not supported`},
		{"tty", func(p *v1.Pod) { p.Spec.Containers[0].TTY = true }, `spec.containers[0]: stdin or tty is not supported`},
		{"extended resource", func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Limits = v1.ResourceList{"amd.com/gpu": resource.MustParse("1")}
		}, `spec.containers[0].resources.limits[amd.com/gpu]: resource "amd.com/gpu" is not supported by backend "docker"`},
		{"seLinuxOptions", func(p *v1.Pod) {
			p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{SELinuxOptions: &v1.SELinuxOptions{Level: "s0"}}
		}, `spec.containers[0].securityContext.seLinuxOptions: this field is not supported`},
		{"fsGroup", func(p *v1.Pod) { g := int64(2000); p.Spec.SecurityContext.FSGroup = &g }, `spec.securityContext.fsGroup: this field is not supported`},
		{"restartPolicy value", func(p *v1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, `spec.restartPolicy: "Sometimes" is not a restart policy`},
		{"container restartPolicy (sidecar)", func(p *v1.Pod) {
			a := v1.ContainerRestartPolicyAlways
			p.Spec.Containers[0].RestartPolicy = &a
		}, `spec.containers[0].restartPolicy: this field is not supported`},
		{"hostPort", func(p *v1.Pod) {
			p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080}}
		}, `spec.containers[0].ports[0].hostPort: this field is not supported`},
		{"runAsNonRoot unverifiable", func(p *v1.Pod) { p.Spec.SecurityContext.RunAsNonRoot = &yes }, `spec.securityContext.runAsNonRoot: runAsNonRoot needs a runAsUser`},
		{"dnsPolicy None", func(p *v1.Pod) { p.Spec.DNSPolicy = v1.DNSNone }, `spec.dnsPolicy: dnsPolicy "None" is not supported`},
		{"unknown fieldRef", func(p *v1.Pod) {
			p.Spec.Containers[0].Env = []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.bogus"}}}}
		}, `spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: field path "spec.bogus" is not supported`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := defaultPod(t)
			tc.mutate(p)
			ps := problems(t, Validate(p, fullCaps, "docker"))
			if !contains(ps, tc.want) {
				t.Fatalf("problems %q do not include %q", ps, tc.want)
			}
		})
	}
}

func TestValidateMinimalBackendNamesEachFeature(t *testing.T) {
	p := defaultPod(t)
	p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox:1.36"}}
	p.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	p.Spec.Containers[0].ImagePullPolicy = v1.PullNever
	p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}})
	p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, v1.VolumeMount{Name: "scratch", MountPath: "/s", SubPath: "x"})
	ps := problems(t, Validate(p, minimalCaps, "slim"))
	for _, want := range []string{
		`spec.initContainers: an init container is not supported by backend "slim"`,
		`spec.restartPolicy: restartPolicy OnFailure is not supported`,
		`spec.containers[0].imagePullPolicy: imagePullPolicy Never is not supported`,
		`spec.volumes[1].emptyDir.medium: emptyDir medium Memory is not supported`,
		`spec.containers[0].volumeMounts[1]: volume kind "emptyDir" is not supported`,
		`spec.containers[0].volumeMounts[1].subPath: subPath is not supported`,
	} {
		if !contains(ps, want) {
			t.Errorf("problems %q do not include %q", ps, want)
		}
	}
	if err := Validate(p, minimalCaps, "slim"); !strings.Contains(err.Error(), "; ") {
		t.Errorf("the error should list every problem: %v", err)
	}
}

func TestValidateStructure(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(p *v1.Pod)
		want   string
	}{
		{"no containers", func(p *v1.Pod) { p.Spec.Containers = nil }, "spec.containers: the pod has no containers"},
		{"duplicate names", func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "main", Image: "busybox:1.36"}}
		}, `spec.containers[0].name: container name "main" is used twice (also at spec.initContainers[0])`},
		{"mount of no volume", func(p *v1.Pod) {
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, v1.VolumeMount{Name: "ghost", MountPath: "/g"})
		}, `spec.containers[0].volumeMounts[1].name: the pod has no volume "ghost"`},
		{"missing uid", func(p *v1.Pod) { p.UID = "" }, "metadata.uid: the pod has no metadata.uid"},
		{"uid with a slash", func(p *v1.Pod) { p.UID = "../etc" }, `metadata.uid: "../etc" is not a UID`},
		{"no image", func(p *v1.Pod) { p.Spec.Containers[0].Image = "" }, "spec.containers[0].image: a container needs an image"},
		{"item path escape", func(p *v1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
				LocalObjectReference: v1.LocalObjectReference{Name: "c"}, Items: []v1.KeyToPath{{Key: "k", Path: "../../etc/passwd"}}}}})
		}, `spec.volumes[1].configMap.items[0].path: path "../../etc/passwd" must not contain '..'`},
		{"absolute item path", func(p *v1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{
				SecretName: "s", Items: []v1.KeyToPath{{Key: "k", Path: "/etc/shadow"}}}}})
		}, `spec.volumes[1].secret.items[0].path: path "/etc/shadow" must be a relative path`},
		{"subPath escape", func(p *v1.Pod) {
			p.Spec.Containers[0].VolumeMounts[0].SubPath = "a/../../x"
		}, `spec.containers[0].volumeMounts[0].subPath: subPath "a/../../x" must not contain '..'`},
		{"bad volume name", func(p *v1.Pod) { p.Spec.Volumes[0].Name = "../x"; p.Spec.Containers[0].VolumeMounts[0].Name = "../x" }, `spec.volumes[0].name: volume name "../x" must be a DNS label`},
		{"relative hostPath", func(p *v1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "tmp"}}})
		}, `spec.volumes[1].hostPath.path: "tmp" must be an absolute path`},
		{"duplicate mountPath", func(p *v1.Pod) {
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, p.Spec.Containers[0].VolumeMounts[0])
		}, `spec.containers[0].volumeMounts[1].mountPath: "/var/run/secrets/kubernetes.io/serviceaccount" is already mounted by volumeMounts[0]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := defaultPod(t)
			tc.mutate(p)
			ps := problems(t, Validate(p, fullCaps, "docker"))
			if !contains(ps, tc.want) {
				t.Fatalf("problems %q do not include %q", ps, tc.want)
			}
		})
	}
}

func TestValidateAcceptsDeclaredFeatures(t *testing.T) {
	p := defaultPod(t)
	uid, gid, no, yes := int64(1000), int64(1000), false, true
	p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox:latest", ImagePullPolicy: v1.PullIfNotPresent}}
	p.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	g := int64(5)
	p.Spec.TerminationGracePeriodSeconds = &g
	p.Spec.Volumes = append(p.Spec.Volumes,
		v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("64Mi"))}}},
		v1.Volume{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/tmp"}}})
	c := &p.Spec.Containers[0]
	c.VolumeMounts = append(c.VolumeMounts, v1.VolumeMount{Name: "mem", MountPath: "/mem"}, v1.VolumeMount{Name: "host", MountPath: "/h", SubPath: "x"})
	c.Ports = []v1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: v1.ProtocolTCP}}
	c.Resources.Limits = v1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("64Mi"), "nvidia.com/gpu": resource.MustParse("1")}
	c.SecurityContext = &v1.SecurityContext{RunAsUser: &uid, RunAsGroup: &gid, RunAsNonRoot: &yes, AllowPrivilegeEscalation: &no,
		ReadOnlyRootFilesystem: &yes, Capabilities: &v1.Capabilities{Drop: []v1.Capability{"ALL"}},
		SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeRuntimeDefault}}
	c.Env = []v1.EnvVar{{Name: "IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "CPU", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}}}
	if err := Validate(p, fullCaps, "docker"); err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

// A backend whose containers check their own user (FeatureRunAsNonRoot) takes runAsNonRoot without a
// runAsUser; root named outright is refused everywhere.
func TestValidateRunAsNonRoot(t *testing.T) {
	yes, root := true, int64(0)
	caps := backend.Capabilities{Features: []string{backend.FeatureRunAsNonRoot, backend.FeatureRunAsUser}}
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "0c95f954-0adf-4f6a-8d03-a2995b622e28"},
		Spec: v1.PodSpec{RestartPolicy: v1.RestartPolicyNever, SecurityContext: &v1.PodSecurityContext{RunAsNonRoot: &yes},
			Containers: []v1.Container{{Name: "c", Image: "busybox"}}}}
	if err := Validate(p, caps, "b"); err != nil {
		t.Errorf("runAsNonRoot without runAsUser on a backend that checks: %v", err)
	}
	p.Spec.SecurityContext.RunAsUser = &root
	if err := Validate(p, caps, "b"); err == nil || !strings.Contains(err.Error(), "runAsNonRoot contradicts runAsUser 0") {
		t.Errorf("runAsNonRoot with runAsUser 0: %v, want it refused", err)
	}
}
