package kubernetes

import (
	"context"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
)

// TestObjectsOwnedByTheRemotePod: the ConfigMap and Secret a pod mounts become remote objects owned by the
// remote pod, and deleting the pod removes them (the remote garbage collector).
func TestObjectsOwnedByTheRemotePod(t *testing.T) {
	t.Parallel()
	b, r := newBackend(t, nil)
	c := conformance.ShellContainer("main", "cat /cm/k /sec/p; sleep 300")
	c.VolumeMounts = []v1.VolumeMount{{Name: "cm", MountPath: "/cm"}, {Name: "sec", MountPath: "/sec"}}
	p := conformance.NewPod("owned", c)
	p.Spec.Volumes = []v1.Volume{
		{Name: "cm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
		{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "pw"}}},
	}
	objs := conformance.Objects{
		ConfigMaps: []v1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: p.Namespace}, Data: map[string]string{"k": "from-configmap\n"}}},
		Secrets:    []v1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: "pw", Namespace: p.Namespace}, Data: map[string][]byte{"p": []byte("from-secret\n")}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := b.Create(ctx, conformance.NewCreateRequest(p, objs))
	if err != nil {
		t.Fatal(err)
	}
	conformance.WaitForPhase(t, b, p, 4*time.Minute, v1.PodRunning)
	rp, err := r.admin.CoreV1().Pods(r.namespace).Get(ctx, remoteName(string(p.UID)), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rp.Spec.NodeName != r.cluster.Node || gated(rp) {
		t.Errorf("the remote pod is on node %q, gated %v; want on %s, released", rp.Spec.NodeName, gated(rp), r.cluster.Node)
	}
	cmName, secName := rp.Spec.Volumes[0].ConfigMap.Name, rp.Spec.Volumes[1].Secret.SecretName
	cm, err := r.admin.CoreV1().ConfigMaps(r.namespace).Get(ctx, cmName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the remote ConfigMap: %v", err)
	}
	sec, err := r.admin.CoreV1().Secrets(r.namespace).Get(ctx, secName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the remote Secret: %v", err)
	}
	for _, o := range []metav1.Object{cm, sec} {
		refs := o.GetOwnerReferences()
		if len(refs) != 1 || refs[0].UID != rp.UID || refs[0].Kind != "Pod" {
			t.Errorf("%s is owned by %+v, want the remote pod %s", o.GetName(), refs, rp.UID)
		}
	}
	var logs strings.Builder
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(logs.String(), "from-secret") && time.Now().Before(deadline) {
		logs.Reset()
		_ = b.Logs(ctx, backend.LogRequest{LogStruct: logStruct(p, "main")}, &logs)
		time.Sleep(time.Second)
	}
	if logs.String() != "from-configmap\nfrom-secret\n" {
		t.Errorf("the container read %q from its remote volumes", logs.String())
	}
	if err := b.Delete(ctx, backend.DeleteRequest{Pod: p, RemoteID: res.RemoteID, GracePeriod: time.Second}); err != nil {
		t.Fatal(err)
	}
	for {
		_, e1 := r.admin.CoreV1().ConfigMaps(r.namespace).Get(ctx, cmName, metav1.GetOptions{})
		_, e2 := r.admin.CoreV1().Secrets(r.namespace).Get(ctx, secName, metav1.GetOptions{})
		if apierrors.IsNotFound(e1) && apierrors.IsNotFound(e2) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the remote objects outlived their pod: %v, %v", e1, e2)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestRecovery: a backend started again with the same instance finds the remote pod from the label
// selector alone, reports it and deletes it.
func TestRecovery(t *testing.T) {
	t.Parallel()
	first, r := newBackend(t, nil)
	p := conformance.NewPod("recover", conformance.ShellContainer("main", "sleep 300"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := first.Create(ctx, conformance.NewCreateRequest(p, conformance.Objects{})); err != nil {
		t.Fatal(err)
	}
	conformance.WaitForPhase(t, first, p, 4*time.Minute, v1.PodRunning)
	first.Close()
	second := startBackend(t, first.env)
	recs, err := second.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].UID != string(p.UID) || recs[0].Name != p.Name || recs[0].Namespace != p.Namespace ||
		recs[0].RemoteID != r.namespace+"/"+remoteName(string(p.UID)) || recs[0].Phase != v1.PodRunning {
		t.Fatalf("List after a restart: %+v", recs)
	}
	before := second.APIRequests()
	st := conformance.StatusOf(t, second, p, time.Minute)
	if st.Containers[0].State.Running == nil {
		t.Errorf("the recovered pod: %s", conformance.FormatStatus(st))
	}
	if n := second.APIRequests() - before; n != 0 {
		t.Errorf("the status of a recovered pod sent %d requests", n)
	}
	if err := second.Delete(ctx, backend.DeleteRequest{Pod: &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: p.UID}}, GracePeriod: time.Second}); err != nil {
		t.Fatal(err)
	}
	if recs, _ := second.List(ctx); len(recs) != 0 {
		t.Errorf("List after Delete: %+v", recs)
	}
}

// TestRemoteSideErrors: a remote namespace that does not exist is named in Create's error, and a node
// selector that selects no node leaves the capacity unknown rather than zero.
func TestRemoteSideErrors(t *testing.T) {
	t.Parallel()
	r := newRemote(t)
	env := backend.Env{Name: "kubernetes", Instance: "test-" + strings.ToLower(string(conformance.NewUID())[:8]),
		DataDir: t.TempDir(), Config: r.config(map[string]any{"kubeconfig": r.cluster.Kubeconfig,
			"namespace":     "ilk-absent-" + strings.ToLower(string(conformance.NewUID())[:8]),
			"node_selector": map[string]string{"interlink.eu/bench": "no-such-node"}})}
	b := startBackend(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := b.Capacity(ctx)
	if err != nil || c.CPUMilli != nil || c.MemoryBytes != nil || c.Pods != nil {
		t.Errorf("Capacity with no node selected: %+v, %v", c, err)
	}
	p := conformance.NewPod("nons", conformance.ShellContainer("main", "true"))
	_, err = b.Create(ctx, conformance.NewCreateRequest(p, conformance.Objects{}))
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "ilk-absent-") {
		t.Errorf("Create into a namespace that does not exist: %v", err)
	}
}

// TestFollowRightAfterCreate: kubectl logs -f the moment the pod is created, as a user does. The remote
// pod goes through every early stage (gated and unscheduled: the API server answers an empty log; on the
// lab's virtual node and Pending: its dispatcher does not know the pod yet, or has not started the
// container, and answers 404 or an empty log), and the followed log must still be the container's whole
// output, ending when the container ends.
func TestFollowRightAfterCreate(t *testing.T) {
	t.Parallel()
	b, _ := newBackend(t, nil)
	p := conformance.NewPod("early-follow", conformance.ShellContainer("main", "echo start; sleep 8; echo end"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := b.Create(ctx, conformance.NewCreateRequest(p, conformance.Objects{})); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	req := backend.LogRequest{LogStruct: logStruct(p, "main")}
	req.Opts.Follow = true
	if err := b.Logs(ctx, req, &out); err != nil {
		t.Fatalf("Logs with Follow right after Create: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the followed log did not end with the container")
	}
	if out.String() != "start\nend\n" {
		t.Errorf("followed log = %q, want %q", out.String(), "start\nend\n")
	}
	st := conformance.StatusOf(t, b, p, time.Minute)
	var m dto.Metric
	_ = b.metrics.followRetries.Write(&m)
	t.Logf("followed again %v times; the container then: %+v", m.GetCounter().GetValue(), st.Containers[0].State)
}
