package pod

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

func TestResolveEnv(t *testing.T) {
	p := defaultPod(t)
	c := &p.Spec.Containers[0]
	c.Resources.Limits = v1.ResourceList{"cpu": resource.MustParse("1500m"), "memory": resource.MustParse("128Mi")}
	c.Resources.Requests = v1.ResourceList{"cpu": resource.MustParse("250m")}
	field := func(path string) *v1.EnvVarSource {
		return &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: path}}
	}
	c.EnvFrom = []v1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "app-config"}}}}
	c.Env = []v1.EnvVar{
		{Name: "A", Value: "1"},
		{Name: "B", Value: "$(A)-$(MISSING)-$$(A)"},
		{Name: "NAME", ValueFrom: field("metadata.name")},
		{Name: "NS", ValueFrom: field("metadata.namespace")},
		{Name: "UID", ValueFrom: field("metadata.uid")},
		{Name: "IP", ValueFrom: field("status.podIP")},
		{Name: "APP", ValueFrom: field("metadata.labels['app']")},
		{Name: "NODE", ValueFrom: field("spec.nodeName")},
		{Name: "SA", ValueFrom: field("spec.serviceAccountName")},
		{Name: "CPU", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}},
		{Name: "CPU_M", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
		{Name: "MEM_MI", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
		{Name: "PASS", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
		{Name: "CONF", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "app-config"}, Key: "mode"}}},
		{Name: "OPT", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: ptr(true)}}},
		{Name: "RESOLVED", Value: "by-interlink", ValueFrom: field("metadata.name")},
		{Name: "A", Value: "2"},
	}
	objs := NewObjects([]interlink.RetrievedContainer{{Name: "main",
		ConfigMaps: []v1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "app-config"}, Data: map[string]string{"mode": "fast"}}},
		Secrets:    []v1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret")}}}}})
	env, err := ResolveEnv(p, c, objs)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(EnvList(env), " ")
	want := "CFG_mode=fast A=2 B=1-$(MISSING)-$(A) NAME=web NS=team-a UID=0b7c5e5e-4a7e-4d43-9d51-2f4c1f3b8a11 IP=10.0.0.7 " +
		"APP=web NODE=interlink-node SA=default CPU=2 CPU_M=250 MEM_MI=128 PASS=s3cret CONF=fast RESOLVED=by-interlink"
	if got != want {
		t.Errorf("env:\n got %s\nwant %s", got, want)
	}
	args := ExpandAll([]string{"echo", "$(NAME)", "$(NOPE)", "$("}, EnvLookup(env))
	if strings.Join(args, " ") != "echo web $(NOPE) $(" {
		t.Errorf("args = %q", args)
	}

	c.Env = []v1.EnvVar{{Name: "X", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Key: "nokey"}}}}
	c.EnvFrom = nil
	if _, err := ResolveEnv(p, c, objs); err == nil || !strings.Contains(err.Error(), `key "nokey" of secret "creds" was not sent`) {
		t.Errorf("missing key: %v", err)
	}
}
