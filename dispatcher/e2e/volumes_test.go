package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// settings and creds are the ConfigMap and Secret the volume and env cases mount.
func (e *env) settingsAndCreds() {
	e.t.Helper()
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: e.ns},
		Data: map[string]string{"app.conf": "color=blue", "one.conf": "one=1", "other.txt": "unused", "COLOR": "green"}}
	if _, err := e.c.core.ConfigMaps(e.ns).Create(e.ctx, cm, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	s := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: e.ns},
		StringData: map[string]string{"password": "s3cr3t", "token": "tkn", "USER": "alice"}}
	if _, err := e.c.core.Secrets(e.ns).Create(e.ctx, s, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// configMap and secret volumes with items (a key to a path, the rest left out), defaultMode and a per-item
// mode, a subPath of a configMap volume, and an emptyDir.
func TestConfigMapSecretEmptyDirVolumes(t *testing.T) {
	forEachBackend(t, func(e *env) {
		e.settingsAndCreds()
		p := e.pod("volumes", sh("main", busybox, `
echo "cm=$(cat /etc/cm/conf/app.conf)"; echo "cm-mode=$(stat -L -c %a /etc/cm/conf/app.conf)"
[ -e /etc/cm/other.txt ] && echo cm-other=present || echo cm-other=absent
echo "pw=$(cat /etc/secret/pw)"; echo "pw-mode=$(stat -L -c %a /etc/secret/pw)"
[ -e /etc/secret/token ] && echo secret-token=present || echo secret-token=absent
echo "sub=$(cat /etc/app/one.conf)"; [ -d /etc/app/one.conf ] && echo sub-kind=dir || echo sub-kind=file
echo written > /scratch/f && echo "scratch=$(cat /scratch/f)"`))
		p.Spec.Volumes = []v1.Volume{
			{Name: "cm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
				LocalObjectReference: v1.LocalObjectReference{Name: "settings"},
				Items:                []v1.KeyToPath{{Key: "app.conf", Path: "conf/app.conf"}},
				DefaultMode:          ptr[int32](0o440)}}},
			{Name: "secret", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{
				SecretName:  "creds",
				Items:       []v1.KeyToPath{{Key: "password", Path: "pw", Mode: ptr[int32](0o400)}},
				DefaultMode: ptr[int32](0o444)}}},
			{Name: "whole", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
				LocalObjectReference: v1.LocalObjectReference{Name: "settings"}}}},
			{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{
			{Name: "cm", MountPath: "/etc/cm", ReadOnly: true},
			{Name: "secret", MountPath: "/etc/secret", ReadOnly: true},
			{Name: "whole", MountPath: "/etc/app/one.conf", SubPath: "one.conf", ReadOnly: true},
			{Name: "scratch", MountPath: "/scratch"},
		}
		e.create(p)
		p = e.waitPod("volumes", e.finishTimeout, "finished", finished)
		out, _ := e.logsErr("volumes", v1.PodLogOptions{})
		if p.Status.Phase != v1.PodSucceeded {
			e.t.Fatalf("phase %s, want Succeeded: %s\nlogs: %s", p.Status.Phase, describe(p), out)
		}
		wantValues(e.t, out, map[string]string{
			"cm": "color=blue", "cm-mode": "440", "cm-other": "absent",
			"pw": "s3cr3t", "pw-mode": "400", "secret-token": "absent",
			"sub": "one=1", "sub-kind": "file", "scratch": "written",
		})
	})
}

// The service-account token volume Kubernetes adds to every pod (a projected volume of a bound token,
// kube-root-ca.crt and the namespace), and a projected volume of our own with downward API items and a
// configMap item under a defaultMode.
func TestProjectedVolumes(t *testing.T) {
	forEachBackend(t, func(e *env) {
		e.settingsAndCreds()
		const sa = "/var/run/secrets/kubernetes.io/serviceaccount"
		p := e.pod("projected", sh("main", busybox, `
echo "token=$(cat `+sa+`/token)"
echo "ca-sha256=$(sha256sum `+sa+`/ca.crt | cut -d' ' -f1)"
echo "namespace=$(cat `+sa+`/namespace)"
echo "podname=$(cat /etc/info/podname)"; echo "podnamespace=$(cat /etc/info/podnamespace)"; echo "poduid=$(cat /etc/info/poduid)"
echo "app=$(cat /etc/info/conf/app.conf)"; echo "app-mode=$(stat -L -c %a /etc/info/conf/app.conf)"`))
		p.Spec.Volumes = []v1.Volume{{Name: "info", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
			DefaultMode: ptr[int32](0o440),
			Sources: []v1.VolumeProjection{
				{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{
					{Path: "podname", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}},
					{Path: "podnamespace", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
					{Path: "poduid", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.uid"}},
				}}},
				{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "settings"},
					Items: []v1.KeyToPath{{Key: "app.conf", Path: "conf/app.conf"}}}},
			}}}}}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "info", MountPath: "/etc/info", ReadOnly: true}}
		created := e.create(p)
		p = e.waitPod("projected", e.finishTimeout, "finished", finished)
		out, _ := e.logsErr("projected", v1.PodLogOptions{})
		if p.Status.Phase != v1.PodSucceeded {
			e.t.Fatalf("phase %s, want Succeeded: %s\nlogs: %s", p.Status.Phase, describe(p), out)
		}
		root, err := e.c.core.ConfigMaps(e.ns).Get(e.ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(root.Data["ca.crt"]))
		wantValues(e.t, out, map[string]string{
			"ca-sha256": hex.EncodeToString(sum[:]), "namespace": e.ns,
			"podname": "projected", "podnamespace": e.ns, "poduid": string(created.UID),
			"app": "color=blue", "app-mode": "440",
		})
		// The token is one the API server accepts, for the pod's service account.
		token := keyValues(out)["token"]
		if strings.Count(token, ".") != 2 {
			e.t.Fatalf("the token file does not hold a JWT: %q", token)
		}
		review, err := e.c.authn.TokenReviews().Create(e.ctx, &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		if want := "system:serviceaccount:" + e.ns + ":default"; !review.Status.Authenticated || review.Status.User.Username != want {
			e.t.Errorf("the API server says of the pod's token: authenticated=%v user=%q error=%q, want %s",
				review.Status.Authenticated, review.Status.User.Username, review.Status.Error, want)
		}
	})
}

// env from fieldRef, resolved to the pod's own fields.
func TestEnvFieldRef(t *testing.T) {
	forEachBackend(t, func(e *env) {
		c := sh("main", busybox, `echo "name=$POD_NAME"; echo "namespace=$POD_NAMESPACE"; echo "uid=$POD_UID"
echo "node=$NODE_NAME"; echo "sa=$SA_NAME"; echo "plain=$PLAIN"`)
		field := func(name, path string) v1.EnvVar {
			return v1.EnvVar{Name: name, ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: path}}}
		}
		c.Env = []v1.EnvVar{
			field("POD_NAME", "metadata.name"), field("POD_NAMESPACE", "metadata.namespace"), field("POD_UID", "metadata.uid"),
			field("NODE_NAME", "spec.nodeName"), field("SA_NAME", "spec.serviceAccountName"), {Name: "PLAIN", Value: "value"},
		}
		created := e.create(e.pod("fieldref", c))
		p := e.waitPod("fieldref", e.finishTimeout, "finished", finished)
		out, _ := e.logsErr("fieldref", v1.PodLogOptions{})
		if p.Status.Phase != v1.PodSucceeded {
			e.t.Fatalf("phase %s, want Succeeded: %s\nlogs: %s", p.Status.Phase, describe(p), out)
		}
		wantValues(e.t, out, map[string]string{"name": "fieldref", "namespace": e.ns, "uid": string(created.UID),
			"node": e.c.Node, "sa": "default", "plain": "value"})
	})
}

// env from configMapKeyRef, secretKeyRef, and envFrom a ConfigMap or a Secret: the virtual kubelet resolves
// them through listers it never starts, finds no ConfigMap or Secret, and never hands the pod to interLink.
// Each pod stays Pending with no container status, while a control pod created after them, with the same
// ConfigMap and Secret as volumes, runs to its end: the env pods are not merely slow.
func TestEnvFromConfigMapOrSecretStaysPendingInVirtualKubelet(t *testing.T) {
	forEachBackend(t, func(e *env) {
		e.settingsAndCreds()
		cmRef := v1.LocalObjectReference{Name: "settings"}
		secretRef := v1.LocalObjectReference{Name: "creds"}
		cases := map[string]func(*v1.Container){
			"cmkeyref": func(c *v1.Container) {
				c.Env = []v1.EnvVar{{Name: "V", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: cmRef, Key: "app.conf"}}}}
			},
			"secretkeyref": func(c *v1.Container) {
				c.Env = []v1.EnvVar{{Name: "V", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: secretRef, Key: "password"}}}}
			},
			"envfromcm": func(c *v1.Container) {
				c.EnvFrom = []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: cmRef}}}
			},
			"envfromsecret": func(c *v1.Container) {
				c.EnvFrom = []v1.EnvFromSource{{Prefix: "S_", SecretRef: &v1.SecretEnvSource{LocalObjectReference: secretRef}}}
			},
		}
		for name, set := range cases {
			c := sh("main", busybox, "echo ran")
			set(&c)
			e.create(e.pod(name, c))
		}
		control := e.pod("control", sh("main", busybox, `echo "cm=$(cat /etc/cm/app.conf)"; echo "pw=$(cat /etc/secret/password)"`))
		control.Spec.Volumes = []v1.Volume{
			{Name: "cm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: cmRef}}},
			{Name: "secret", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: secretRef.Name}}},
		}
		control.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{
			{Name: "cm", MountPath: "/etc/cm", ReadOnly: true}, {Name: "secret", MountPath: "/etc/secret", ReadOnly: true}}
		e.create(control)
		p := e.waitPod("control", e.finishTimeout, "finished", finished)
		out, _ := e.logsErr("control", v1.PodLogOptions{})
		if p.Status.Phase != v1.PodSucceeded {
			e.t.Fatalf("the control pod, with the ConfigMap and the Secret as volumes: phase %s, want Succeeded: %s\nlogs: %s",
				p.Status.Phase, describe(p), out)
		}
		wantValues(e.t, out, map[string]string{"cm": "color=blue", "pw": "s3cr3t"})
		for name := range cases {
			p, err := e.c.core.Pods(e.ns).Get(e.ctx, name, metav1.GetOptions{})
			if err != nil {
				e.t.Fatal(err)
			}
			if p.Status.Phase != v1.PodPending || p.Spec.NodeName != e.c.Node {
				e.t.Errorf("pod %s is not Pending on the virtual node after the control pod, created after it, ended: %s", name, describe(p))
			}
			if len(p.Status.ContainerStatuses) != 0 {
				e.t.Errorf("pod %s has container statuses, as if the virtual kubelet had taken it: %s", name, describe(p))
			}
		}
	})
}
