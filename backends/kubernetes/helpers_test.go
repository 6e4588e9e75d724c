package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest/labkube"
)

// remote is a test's own slice of the lab cluster: a namespace with deploy/kubernetes-backend/rbac.yaml
// applied in it, and a kubeconfig holding only that service account's token, so that every test also checks
// that the manifest grants enough.
type remote struct {
	cluster    *labkube.Cluster
	admin      kubernetes.Interface
	namespace  string
	kubeconfig string
}

// newRemote makes the test's namespace and RBAC on the lab cluster, removed when the test ends.
func newRemote(t testing.TB) *remote {
	t.Helper()
	c := labkube.RequireKubernetes(t)
	admin, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	suffix := string(conformance.NewUID())[:8]
	r := &remote{cluster: c, admin: admin, namespace: "ilk-test-" + suffix}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	manifest, err := os.ReadFile(filepath.Join(labtest.RepoRoot(), "deploy", "kubernetes-backend", "rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.remove(suffix))
	for _, doc := range bytes.Split(manifest, []byte("\n---\n")) {
		if err := r.apply(ctx, doc, suffix); err != nil {
			t.Fatalf("applying deploy/kubernetes-backend/rbac.yaml: %v", err)
		}
	}
	exp := int64(2 * 3600)
	tok, err := admin.CoreV1().ServiceAccounts(r.namespace).CreateToken(ctx, "interlink-dispatcher",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of the backend's service account: %v", err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["lab"] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthority: c.Config.CAFile,
		CertificateAuthorityData: c.Config.CAData}
	kc.AuthInfos["backend"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: "backend", Namespace: r.namespace}
	kc.CurrentContext = "lab"
	r.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, r.kubeconfig); err != nil {
		t.Fatal(err)
	}
	r.waitGranted(t, ctx)
	return r
}

// waitGranted waits until the API server grants the backend's token what the manifest gives it: its RBAC
// authorizer works from a cache of the Roles and bindings, which takes in a new binding a moment after it
// was created (seen: "nodes is forbidden" to a backend started right after the ClusterRoleBinding).
func (r *remote) waitGranted(t testing.TB, ctx context.Context) {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", r.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	one := metav1.ListOptions{Limit: 1}
	for {
		_, err := cli.CoreV1().Nodes().List(ctx, one)
		if err == nil {
			_, err = cli.CoreV1().Pods(r.namespace).List(ctx, one)
		}
		if err == nil {
			return
		}
		if !apierrors.IsForbidden(err) || ctx.Err() != nil {
			t.Fatalf("the backend's service account, with deploy/kubernetes-backend/rbac.yaml applied: %v", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// apply creates one document of the RBAC manifest, in the test's namespace and with cluster-scoped names
// made the test's own.
func (r *remote) apply(ctx context.Context, doc []byte, suffix string) error {
	var head struct{ Kind string }
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	var err error
	switch head.Kind {
	case "":
		return nil // comments only
	case "Namespace":
		_, err = r.admin.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.namespace}}, metav1.CreateOptions{})
	case "ServiceAccount":
		var o v1.ServiceAccount
		if err = yaml.Unmarshal(doc, &o); err == nil {
			o.Namespace = r.namespace
			_, err = r.admin.CoreV1().ServiceAccounts(r.namespace).Create(ctx, &o, metav1.CreateOptions{})
		}
	case "Role":
		var o rbacv1.Role
		if err = yaml.Unmarshal(doc, &o); err == nil {
			o.Namespace = r.namespace
			_, err = r.admin.RbacV1().Roles(r.namespace).Create(ctx, &o, metav1.CreateOptions{})
		}
	case "RoleBinding":
		var o rbacv1.RoleBinding
		if err = yaml.Unmarshal(doc, &o); err == nil {
			o.Namespace = r.namespace
			r.subjects(o.Subjects)
			_, err = r.admin.RbacV1().RoleBindings(r.namespace).Create(ctx, &o, metav1.CreateOptions{})
		}
	case "ClusterRole":
		var o rbacv1.ClusterRole
		if err = yaml.Unmarshal(doc, &o); err == nil {
			o.Name += "-" + suffix
			_, err = r.admin.RbacV1().ClusterRoles().Create(ctx, &o, metav1.CreateOptions{})
		}
	case "ClusterRoleBinding":
		var o rbacv1.ClusterRoleBinding
		if err = yaml.Unmarshal(doc, &o); err == nil {
			o.Name += "-" + suffix
			o.RoleRef.Name += "-" + suffix
			r.subjects(o.Subjects)
			_, err = r.admin.RbacV1().ClusterRoleBindings().Create(ctx, &o, metav1.CreateOptions{})
		}
	default:
		return fmt.Errorf("unexpected kind %s in the manifest", head.Kind)
	}
	return err
}

func (r *remote) subjects(s []rbacv1.Subject) {
	for i := range s {
		if s[i].Namespace != "" {
			s[i].Namespace = r.namespace
		}
	}
}

func (r *remote) remove(suffix string) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = r.admin.RbacV1().ClusterRoleBindings().Delete(ctx, "interlink-dispatcher-capacity-"+suffix, metav1.DeleteOptions{})
		_ = r.admin.RbacV1().ClusterRoles().Delete(ctx, "interlink-dispatcher-capacity-"+suffix, metav1.DeleteOptions{})
		if err := r.admin.CoreV1().Namespaces().Delete(ctx, r.namespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			fmt.Fprintf(os.Stderr, "cannot delete the test namespace %s: %v\n", r.namespace, err)
		}
	}
}

// config is the backend config for the lab: the test's namespace, and the node selector and tolerations that
// put its pods on the lab's virtual node.
func (r *remote) config(extra map[string]any) json.RawMessage {
	var tols []v1.Toleration
	for _, t := range r.cluster.Taints {
		tols = append(tols, v1.Toleration{Key: t.Key, Operator: v1.TolerationOpExists, Effect: t.Effect})
	}
	cfg := map[string]any{"kubeconfig": r.kubeconfig, "namespace": r.namespace,
		"node_selector": map[string]string{labkube.NodeTypeLabel: labkube.NodeTypeValue}, "tolerations": tols}
	for k, v := range extra {
		cfg[k] = v
	}
	raw, _ := json.Marshal(cfg)
	return raw
}

// newBackend starts a backend on the test's own remote namespace; every pod it still has is deleted at the
// end.
func newBackend(t testing.TB, extra map[string]any) (*Backend, *remote) {
	t.Helper()
	r := newRemote(t)
	env := backend.Env{Name: "kubernetes", Instance: "test-" + strings.ToLower(string(conformance.NewUID())[:8]),
		Config: r.config(extra), DataDir: t.TempDir()}
	return startBackend(t, env), r
}

func startBackend(t testing.TB, env backend.Env) *Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := NewBackend(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conformance.DeleteAll(t, b, time.Second)
		b.Close()
	})
	return b
}

// vanish deletes the remote pod behind the backend's back, as the remote cluster's operator (or an
// eviction that removes it) would, and waits until the API server no longer has it.
func (r *remote) vanish(t testing.TB, uid, remoteID string) {
	t.Helper()
	ns, name, _ := strings.Cut(remoteID, "/")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	zero := int64(0)
	if err := r.admin.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatalf("vanish: cannot delete the remote pod %s: %v", remoteID, err)
	}
	for {
		_, err := r.admin.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("vanish: the remote pod %s is still there: %v", remoteID, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func logStruct(p *v1.Pod, container string) interlink.LogStruct {
	return interlink.LogStruct{Namespace: p.Namespace, PodUID: string(p.UID), PodName: p.Name, ContainerName: container}
}
