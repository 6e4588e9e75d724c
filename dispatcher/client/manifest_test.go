package client

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

const objects = `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello, mode: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
data: {user: YWRtaW4=}
`

const twoContainers = `
---
# a comment-only document is skipped
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  restartPolicy: Never
  initContainers:
  - name: setup
    image: busybox:1.36
    volumeMounts: [{name: settings, mountPath: /s}]
  containers:
  - name: main
    image: busybox
    env:
    - {name: MODE, value: explicit}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: MY_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    envFrom: [{configMapRef: {name: settings}, prefix: CFG_}, {secretRef: {name: creds}}]
    volumeMounts:
    - {name: settings, mountPath: /etc/settings}
    - {name: creds, mountPath: /etc/creds}
    - {name: info, mountPath: /etc/info}
    - {name: mixed, mountPath: /etc/mixed}
    - {name: scratch, mountPath: /tmp/scratch}
  - name: side
    image: alpine:3.20
    volumeMounts: [{name: settings, mountPath: /etc/settings}]
  volumes:
  - {name: settings, configMap: {name: settings}}
  - {name: creds, secret: {secretName: creds}}
  - name: info
    downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}, {path: labels, fieldRef: {fieldPath: metadata.labels}}]}
  - name: mixed
    projected:
      sources:
      - configMap: {name: settings, items: [{key: greeting, path: hi.txt}]}
      - secret: {name: creds}
      - serviceAccountToken: {path: token}
  - {name: scratch, emptyDir: {}}
`

func read(t *testing.T, docs ...string) *Manifests {
	t.Helper()
	var m Manifests
	for i, d := range docs {
		if err := m.Read("file"+string(rune('1'+i)), strings.NewReader(d)); err != nil {
			t.Fatal(err)
		}
	}
	return &m
}

// The create request is what interLink builds: per container, init containers first, the objects it mounts
// (an object mounted by two containers comes twice), projected and downwardAPI volumes resolved into maps
// named after the volume, envFrom and key references flattened into env.
func TestBuildAsInterLink(t *testing.T) {
	m := read(t, objects, twoContainers) // the objects in one file, the pod in another
	if len(m.Pods) != 1 || len(m.ConfigMaps) != 1 || len(m.Secrets) != 1 {
		t.Fatalf("read %d pods, %d configmaps, %d secrets", len(m.Pods), len(m.ConfigMaps), len(m.Secrets))
	}
	var warnings []string
	data, err := m.Build(m.Pods[0], BuildOptions{Backend: "slurm", Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	p := data.Pod
	if p.UID == "" || p.Namespace != "default" || p.Annotations[DefaultRoutingAnnotation] != "slurm" {
		t.Fatalf("identity: uid %q ns %q annotations %v", p.UID, p.Namespace, p.Annotations)
	}
	var names []string
	for _, c := range data.Containers {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "setup,main,side" {
		t.Fatalf("containers %v, want init containers first in spec order", names)
	}
	setup, main, side := data.Containers[0], data.Containers[1], data.Containers[2]
	if len(setup.ConfigMaps) != 1 || len(setup.Secrets) != 0 || len(side.ConfigMaps) != 1 || side.ConfigMaps[0].Name != "settings" {
		t.Fatalf("setup %+v side %+v", setup, side)
	}
	if len(main.ConfigMaps) != 1 || len(main.Secrets) != 1 || len(main.ProjectedVolumeMaps) != 2 {
		t.Fatalf("main: %d configmaps, %d secrets, %d projected", len(main.ConfigMaps), len(main.Secrets), len(main.ProjectedVolumeMaps))
	}
	if s := main.Secrets[0]; string(s.Data["password"]) != "s3cret" || string(s.Data["user"]) != "admin" || s.Namespace != "default" {
		t.Fatalf("secret: %+v", s)
	}
	info, mixed := main.ProjectedVolumeMaps[0], main.ProjectedVolumeMaps[1]
	if info.Name != "info" || info.Data["name"] != "web" || info.Data["labels"] != "app=\"web\"\n" {
		t.Fatalf("downwardAPI map: %+v", info)
	}
	if mixed.Name != "mixed" || mixed.Data["hi.txt"] != "hello" || mixed.Data["password"] != "s3cret" || len(mixed.Data) != 3 {
		t.Fatalf("projected map: %+v", mixed.Data)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "service account token") {
		t.Fatalf("warnings: %q", warnings)
	}
	// The downwardAPI volume travels as the projected volume the virtual kubelet makes of it.
	if v := p.Spec.Volumes[2]; v.DownwardAPI != nil || v.Projected == nil || v.Projected.Sources[0].DownwardAPI == nil {
		t.Fatalf("info volume: %+v", v.VolumeSource)
	}
	env := map[string]string{}
	for _, e := range p.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.Name != "MY_NAME" {
			t.Fatalf("env %s left unresolved", e.Name)
		}
		env[e.Name] = e.Value
	}
	want := map[string]string{"MODE": "explicit", "PASSWORD": "s3cret", "CFG_greeting": "hello", "CFG_mode": "fast", "password": "s3cret", "user": "admin"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q (env %v)", k, env[k], v, env)
		}
	}
	if p.Spec.Containers[0].EnvFrom != nil || p.Spec.Containers[0].Env[2].ValueFrom.FieldRef == nil {
		t.Fatal("envFrom must be flattened and fieldRef left for the dispatcher")
	}
	// Defaults of the API server.
	if p.Spec.Containers[0].ImagePullPolicy != v1.PullAlways || p.Spec.InitContainers[0].ImagePullPolicy != v1.PullIfNotPresent ||
		*p.Spec.TerminationGracePeriodSeconds != 30 || p.Spec.RestartPolicy != v1.RestartPolicyNever {
		t.Fatalf("defaults: %+v", p.Spec)
	}
	// The wire form uses interLink's keys.
	raw, _ := json.Marshal(data)
	for _, k := range []string{`"container":[`, `"configMaps":`, `"projectedvolumemaps":`, `"emptyDirs":null`} {
		if !strings.Contains(string(raw), k) {
			t.Errorf("the body lacks %s", k)
		}
	}
}

func TestBuildKeepsGivenUIDAndJSONInput(t *testing.T) {
	m := read(t, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j","namespace":"batch","uid":"u-1"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`)
	data, err := m.Build(m.Pods[0], BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if data.Pod.UID != "u-1" || data.Pod.Namespace != "batch" || data.Pod.Annotations != nil {
		t.Fatalf("%+v", data.Pod.ObjectMeta)
	}
}

// Bad manifests are refused with a sentence that names the document and what is wrong.
func TestBadManifests(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"not a pod", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "file1, document 1: is a Service, not a Pod, a ConfigMap or a Secret"},
		{"deployment", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n", "is a Deployment of apiVersion apps/v1"},
		{"no kind", "metadata: {name: x}\n", "has no kind"},
		{"not yaml", "apiVersion: v1\nkind: Pod\n  bad: [\n", "file1, document 1: is not a YAML or JSON object"},
		{"misspelt field", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containerz: []}\n", `is not a valid Pod: unknown field "containerz"`},
		{"second document", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: Secret\napiVersion: v1\n", "file1, document 2: the Secret has no metadata.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Manifests
			err := m.Read("file1", strings.NewReader(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"no containers", "apiVersion: v1\nkind: Pod\nmetadata: {name: empty}\nspec: {containers: []}\n", "pod empty has no containers"},
		{"missing configmap", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox}]\n  volumes: [{name: v, configMap: {name: nowhere}}]\n",
			`pod p: volume v names the ConfigMap "nowhere", which is not in the manifests (none was given)`},
		{"missing secret in env", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox, env: [{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]\n",
			`container c env X names the Secret "s"`},
		{"missing key", objects + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox, env: [{name: X, valueFrom: {configMapKeyRef: {name: settings, key: nope}}}]}]\n",
			`asks for key "nope" of the ConfigMap "settings"`},
		{"undefined volume", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox, volumeMounts: [{name: ghost, mountPath: /g}]}]\n",
			`mounts the volume "ghost", which spec.volumes does not define`},
		{"no image", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n", "container c has no image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := read(t, tc.doc)
			_, err := m.Build(m.Pods[0], BuildOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
	// An optional ConfigMap that is missing is no error.
	m := read(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox, volumeMounts: [{name: v, mountPath: /v}]}]\n  volumes: [{name: v, configMap: {name: nowhere, optional: true}}]\n")
	if data, err := m.Build(m.Pods[0], BuildOptions{}); err != nil || len(data.Containers[0].ConfigMaps) != 0 {
		t.Fatalf("optional: %v", err)
	}
}

func TestListAndGenerateName(t *testing.T) {
	m := read(t, `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"job-"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}]}`)
	data, err := m.Build(m.Pods[0], BuildOptions{Namespace: "ns1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(data.Pod.Name, "job-") || len(data.Pod.Name) != len("job-")+5 || data.Pod.Namespace != "ns1" {
		t.Fatalf("%s/%s", data.Pod.Namespace, data.Pod.Name)
	}
}
