package kubernetes

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

func offline(t *testing.T, raw string) *Backend {
	t.Helper()
	cfg, err := parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return &Backend{env: backend.Env{Name: "kube", Instance: "i1"}, cfg: cfg, created: map[string]createdPod{}}
}

// TestRemotePod checks the rewrite of a pod for the remote side: identity, scheduling, objects, env.
func TestRemotePod(t *testing.T) {
	b := offline(t, `{"namespace":"remote","node_selector":{"pool":"burst"},"tolerations":[{"key":"k","operator":"Exists"}],
		"priority_class":"low","annotations":{"route":"docker"}}`)
	c := conformance.ShellContainer("main", "echo $(A)")
	c.Env = []v1.EnvVar{{Name: "A", Value: "a$b"}, {Name: "FROM_CM", ValueFrom: &v1.EnvVarSource{
		ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "k"}}},
		{Name: "IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
	p := conformance.NewPod("rewrite", c)
	p.Spec.NodeName = "local-vk"
	p.Spec.ServiceAccountName = "local-sa"
	p.Spec.NodeSelector = map[string]string{"type": "virtual-kubelet"}
	p.Annotations = map[string]string{"dispatcher.interlink.eu/backend": "kubernetes", "keep": "me"}
	p.Spec.Volumes = []v1.Volume{
		{Name: "cm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
		{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "pw"}}},
		{Name: "token", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
			{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token"}}}}}},
	}
	objs := &pod.Objects{
		ConfigMaps: map[string]*v1.ConfigMap{"cfg": {ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"k": "v"}}},
		Secrets:    map[string]*v1.Secret{"pw": {ObjectMeta: metav1.ObjectMeta{Name: "pw"}, Data: map[string][]byte{"p": []byte("s")}}},
		Projected: map[string]*v1.ConfigMap{"token": {ObjectMeta: metav1.ObjectMeta{Name: "token"},
			Data: map[string]string{"token": "jwt", "ca.crt": "pem"}}},
	}
	name := remoteName(string(p.UID))
	rp, made, err := b.remotePod(p, objs, name, "remote")
	if err != nil {
		t.Fatal(err)
	}
	s := rp.Spec
	if rp.Name != name || rp.Namespace != "remote" || s.NodeName != "" || s.ServiceAccountName != "" ||
		s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
		t.Errorf("identity not rewritten: %s/%s node %q sa %q automount %v", rp.Namespace, rp.Name, s.NodeName,
			s.ServiceAccountName, s.AutomountServiceAccountToken)
	}
	if s.NodeSelector["pool"] != "burst" || s.NodeSelector["type"] != "" || len(s.Tolerations) != 1 || s.PriorityClassName != "low" {
		t.Errorf("scheduling not the config's: %v %v %q", s.NodeSelector, s.Tolerations, s.PriorityClassName)
	}
	if !gated(rp) {
		t.Error("the remote pod is not created behind the backend's gate")
	}
	if rp.Annotations["dispatcher.interlink.eu/backend"] != "" || rp.Annotations["keep"] != "me" ||
		rp.Annotations["route"] != "docker" || rp.Annotations[annotationUID] != string(p.UID) {
		t.Errorf("annotations: %v", rp.Annotations)
	}
	if rp.Labels[pod.LabelPodUID] != string(p.UID) || rp.Labels[pod.LabelInstance] != "i1" || rp.Labels[pod.LabelBackend] != "kube" {
		t.Errorf("labels: %v", rp.Labels)
	}
	if len(made) != 3 {
		t.Fatalf("made %d objects, want 3 (configMap, secret, token volume)", len(made))
	}
	if got := s.Volumes[0].ConfigMap.Name; got != made[0].cm.Name || made[0].cm.Data["k"] != "v" {
		t.Errorf("configMap volume points at %s; made %+v", got, made[0].cm)
	}
	if got := s.Volumes[1].Secret.SecretName; got != made[1].secret.Name || string(made[1].secret.Data["p"]) != "s" {
		t.Errorf("secret volume points at %s", got)
	}
	tv := s.Volumes[2]
	if tv.Secret == nil || tv.Secret.SecretName != made[2].secret.Name || len(tv.Secret.Items) != 2 {
		t.Fatalf("the projected token volume is not a Secret of interLink's files: %+v", tv.VolumeSource)
	}
	for _, it := range tv.Secret.Items {
		want := map[string]string{"token": "jwt", "ca.crt": "pem"}[it.Path]
		if string(made[2].secret.Data[it.Key]) != want {
			t.Errorf("file %s holds %q, want %q", it.Path, made[2].secret.Data[it.Key], want)
		}
	}
	env := map[string]v1.EnvVar{}
	for _, e := range s.Containers[0].Env {
		env[e.Name] = e
	}
	if env["A"].Value != "a$$b" || env["FROM_CM"].Value != "v" || env["NAME"].Value != p.Name ||
		env["IP"].ValueFrom == nil || env["IP"].ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("env: %+v", s.Containers[0].Env)
	}

	// A configMap that interLink did not send is refused with its field path.
	delete(objs.ConfigMaps, "cfg")
	_, _, err = b.remotePod(p, objs, name, "remote")
	if backend.KindOf(err) != backend.KindInvalid || !strings.Contains(err.Error(), "spec.volumes[0].configMap.name") {
		t.Errorf("a missing configMap: %v", err)
	}
}

// TestCapabilitiesRefuseHostPath checks that what the remote side cannot honour is refused with its path.
func TestCapabilitiesRefuseHostPath(t *testing.T) {
	b := offline(t, `{}`)
	p := conformance.NewPod("hostpath", conformance.ShellContainer("main", "true"))
	p.Spec.Volumes = []v1.Volume{{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/etc"}}},
		{Name: "c", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "x"}}}}
	err := pod.Validate(p, b.capabilities(), "kube")
	if err == nil || !strings.Contains(err.Error(), "spec.volumes[0]") || !strings.Contains(err.Error(), "spec.volumes[1]") {
		t.Errorf("hostPath and PVC volumes: %v", err)
	}
}

// TestStatusOfEvicted checks the one-to-one mapping and that an evicted pod's containers end.
func TestStatusOfEvicted(t *testing.T) {
	p := conformance.NewPod("evicted", conformance.ShellContainer("main", "sleep 100"), conformance.ShellContainer("side", "sleep 100"))
	rp := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "il-x", Namespace: "r"}, Spec: v1.PodSpec{NodeName: "n"},
		Status: v1.PodStatus{Phase: v1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory.",
			ContainerStatuses: []v1.ContainerStatus{{Name: "main", RestartCount: 3, Image: "busybox",
				State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}}}}
	st := statusOf(p, rp)
	if len(st.Containers) != 2 || st.JobID != "r/il-x" {
		t.Fatalf("status: %+v", st)
	}
	for _, c := range st.Containers {
		if c.State.Terminated == nil || c.State.Terminated.Reason != "Evicted" {
			t.Errorf("container %s of an evicted pod: %+v", c.Name, c.State)
		}
	}
	if st.Containers[0].RestartCount != 3 {
		t.Errorf("restart count not kept: %d", st.Containers[0].RestartCount)
	}
	if ph := pod.Phase(st); ph != v1.PodFailed {
		t.Errorf("an evicted pod reads as %s", ph)
	}
	rp.Status = v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: []v1.ContainerStatus{{Name: "main", Ready: true,
		State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}, LastTerminationState: v1.ContainerState{
			Terminated: &v1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}}}}
	st = statusOf(p, rp)
	if st.Containers[0].State.Running == nil || !st.Containers[0].Ready || st.Containers[0].LastTerminationState.Terminated.ExitCode != 2 {
		t.Errorf("a running container is not mapped as it is: %+v", st.Containers[0])
	}
	if st.Containers[1].State.Waiting == nil {
		t.Errorf("a container the remote kubelet did not report yet: %+v", st.Containers[1])
	}
}

// TestStatusOneState: a remote status with two states set keeps the furthest one only.
func TestStatusOneState(t *testing.T) {
	p := conformance.NewPod("two", conformance.ShellContainer("main", "true"))
	rp := &v1.Pod{Status: v1.PodStatus{Phase: v1.PodRunning, ContainerStatuses: []v1.ContainerStatus{{Name: "main",
		State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "PodInitializing"},
			Terminated: &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}}}}
	s := statusOf(p, rp).Containers[0].State
	if s.Waiting != nil || s.Terminated == nil || s.Terminated.Reason != "Completed" {
		t.Errorf("state: %+v", s)
	}
}

// TestCapacityRules checks the scheduler's rule for a pod's requests and the toleration of node taints.
func TestCapacityRules(t *testing.T) {
	init := conformance.ShellContainer("init", "true")
	init.Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("10Mi")}
	a := conformance.ShellContainer("a", "true")
	a.Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("100Mi")}
	bc := conformance.ShellContainer("b", "true")
	bc.Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), "nvidia.com/gpu": resource.MustParse("1")}
	p := conformance.NewPod("req", a, bc)
	p.Spec.InitContainers = []v1.Container{init}
	r := podRequests(p)
	if cpu := r[v1.ResourceCPU]; cpu.MilliValue() != 2000 {
		t.Errorf("cpu %s, want the init container's 2", cpu.String())
	}
	if mem := r[v1.ResourceMemory]; mem.Value() != 100<<20 {
		t.Errorf("memory %s, want the containers' 100Mi", mem.String())
	}
	if g := r["nvidia.com/gpu"]; g.Value() != 1 {
		t.Errorf("gpu %s", g.String())
	}
	taint := v1.Taint{Key: "virtual-node.interlink/no-schedule", Value: "true", Effect: v1.TaintEffectNoSchedule}
	for _, tc := range []struct {
		tol  v1.Toleration
		want bool
	}{
		{v1.Toleration{Key: taint.Key, Operator: v1.TolerationOpExists}, true},
		{v1.Toleration{Key: taint.Key, Value: "true"}, true},
		{v1.Toleration{Key: taint.Key, Value: "false"}, false},
		{v1.Toleration{Operator: v1.TolerationOpExists}, true},
		{v1.Toleration{Key: taint.Key, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute}, false},
		{v1.Toleration{Key: "other", Operator: v1.TolerationOpExists}, false},
	} {
		if got := tolerates(&tc.tol, &taint); got != tc.want {
			t.Errorf("%+v tolerates %v: %v, want %v", tc.tol, taint, got, tc.want)
		}
	}
}

// TestStatusOfPendingPlaceholder: interLink's virtual kubelet shows every app container of a pod it has just
// taken running, the pod still Pending, before its create has reached the backend behind it; the local pod
// must not read Running then (a log followed at that moment would end at once, empty). An init container,
// and an app container of a Running pod, are passed on as they are.
func TestStatusOfPendingPlaceholder(t *testing.T) {
	p := conformance.NewPod("placeholder", conformance.ShellContainer("main", "sleep 10"))
	p.Spec.InitContainers = []v1.Container{conformance.ShellContainer("side", "sleep 10")}
	running := v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: metav1.Now()}}
	rp := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "il-x", Namespace: "r"}, Spec: v1.PodSpec{NodeName: "vk"},
		Status: v1.PodStatus{Phase: v1.PodPending,
			InitContainerStatuses: []v1.ContainerStatus{{Name: "side", State: running}},
			ContainerStatuses:     []v1.ContainerStatus{{Name: "main", Ready: true, State: running}}}}
	st := statusOf(p, rp)
	if c := st.Containers[0]; c.State.Waiting == nil || c.State.Waiting.Reason != pod.ReasonContainerCreating || c.Ready {
		t.Errorf("app container of a Pending remote pod shown running: %+v", c)
	}
	if c := st.InitContainers[0]; c.State.Running == nil {
		t.Errorf("running init container of a Pending remote pod (a sidecar) not passed on: %+v", c)
	}
	if ph := pod.Phase(st); ph != v1.PodPending {
		t.Errorf("phase = %s, want Pending", ph)
	}
	rp.Status.Phase = v1.PodRunning
	if c := statusOf(p, rp).Containers[0]; c.State.Running == nil || !c.Ready {
		t.Errorf("app container of a Running remote pod: %+v", c)
	}
}

// TestListShowsAPodTheWatchHasNotShownYet checks read-your-writes: a pod created a moment ago is listed from
// the create's answer until the watch's cache holds it, and only once.
func TestListShowsAPodTheWatchHasNotShownYet(t *testing.T) {
	b := offline(t, `{"namespace":"remote"}`)
	b.informers = map[string]cache.SharedIndexInformer{
		"remote": cache.NewSharedIndexInformer(&cache.ListWatch{}, &v1.Pod{}, 0, cache.Indexers{})}
	p := conformance.NewPod("unseen", conformance.ShellContainer("main", "true"))
	rp, _, err := b.remotePod(p, pod.NewObjects(nil), remoteName(string(p.UID)), "remote")
	if err != nil {
		t.Fatal(err)
	}
	rp.Namespace = "remote"
	b.markCreated(string(p.UID), rp)
	want := backend.PodRecord{UID: string(p.UID), Namespace: p.Namespace, Name: p.Name,
		RemoteID: "remote/" + remoteName(string(p.UID)), Phase: v1.PodPending}
	recs, err := b.List(t.Context())
	if err != nil || len(recs) != 1 || recs[0] != want {
		t.Fatalf("List before the watch shows the pod = %+v, %v; want only %+v", recs, err, want)
	}
	// The watch shows it: the store's copy is listed, once.
	if err := b.informers["remote"].GetStore().Add(rp); err != nil {
		t.Fatal(err)
	}
	b.seen(string(p.UID))
	if recs, err := b.List(t.Context()); err != nil || len(recs) != 1 || recs[0] != want {
		t.Errorf("List once the watch shows the pod = %+v, %v; want only %+v", recs, err, want)
	}
}
