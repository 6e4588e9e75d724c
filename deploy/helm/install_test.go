package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest/labkube"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// installLabel marks the namespaces of TestChartInstallsIntoLab, so that one a killed run left is found by a
// query.
const installLabel = "helm-test.interlink.eu/install"

// TestChartInstallsIntoLab installs the chart with helm into a fresh namespace of the lab's cluster, onto the
// virtual node interlink-lab, with the image of make image (built by deploy/image/build.sh into the lab's
// dockerd), and sees it work there: the Deployment becomes available, and the dispatcher inside the pod answers
// /healthz and /readyz 200 with its Docker backend up against a real engine. helm uninstall and the
// namespace's deletion then leave nothing: no pod, no container of the namespace on the lab's engine.
//
// The lab's node runs pods through the lab's dispatcher on its Docker Engine, whose policy admits no hostPath:
// the chart's default (the node's Docker socket and data directory as hostPaths) is refused there. So the
// release runs with dockerSocket disabled and its data in an emptyDir, and its Docker backend reaches the
// lab's dockerd over TCP, through a relay this test opens on the Docker bridge's gateway to the engine's
// socket, answering only the release's own pod (by its address on the bridge). That makes the backend start,
// describe the engine and pass its health check; it could not run a pod there (the engine resolves the
// shim and the pods' volumes on the host, and they are inside the release's pod), and this test runs none.
func TestChartInstallsIntoLab(t *testing.T) {
	lc := labkube.RequireKubernetes(t)
	labtest.RequireDocker(t)
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	core, err := corev1client.NewForConfig(lc.Config)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := appsv1client.NewForConfig(lc.Config)
	if err != nil {
		t.Fatal(err)
	}
	sweepInstallLeftovers(t, core)

	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	ns := "helm-install-" + suffix
	imageRepo, imageTag := "interlink-dispatcher-charttest", suffix

	// The image exactly as make image builds it, into the lab's dockerd, which the lab's dispatcher runs
	// the node's pods on.
	build := exec.Command("bash", filepath.Join(labtest.RepoRoot(), "deploy", "image", "build.sh"))
	build.Env = append(os.Environ(), "IMAGE="+imageRepo, "TAG="+imageTag, "VERSION=v0.0.0-charttest")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/image/build.sh: %v\n%s", err, out)
	}
	// The pause image the release's Docker backend builds on the engine from the image's pause binary: removed
	// afterwards unless it was there before (same binary, same tag: another's, maybe in use).
	pause := pauseRef(t, imageRepo+":"+imageTag)
	_, pauseErr := dockerOut("image", "inspect", pause)
	pauseBefore := pauseErr == nil
	t.Cleanup(func() {
		// After the namespace's cleanup (registered later, run earlier): no container of it uses the images.
		if _, err := dockerOut("image", "inspect", pause); err == nil && !pauseBefore {
			if out, err := exec.Command("docker", "rmi", pause).CombinedOutput(); err != nil {
				t.Logf("docker rmi %s (the release's pause image): %v %s", pause, err, out)
			}
		}
		if out, err := exec.Command("docker", "rmi", imageRepo+":"+imageTag).CombinedOutput(); err != nil {
			t.Errorf("docker rmi %s:%s: %v\n%s", imageRepo, imageTag, err, out)
		}
	})
	phase("image " + imageRepo + ":" + imageTag + " built")

	if _, err := core.Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{installLabel: "true"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	installed := false
	t.Cleanup(func() {
		// What a failed run left: the release, the namespace, the pod's containers on the engine.
		if t.Failed() {
			logPodStatuses(t, core, ns)
		}
		if installed {
			_, _ = exec.Command(helm(t), "uninstall", release, "--namespace", ns, "--kubeconfig", lc.Kubeconfig).CombinedOutput()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := deleteNamespace(ctx, core, ns); err != nil {
			t.Errorf("namespace %s: %v", ns, err)
		}
		if err := waitNoContainers(ctx, ns); err != nil {
			t.Error(err)
		}
	})

	engine := engineRelay(t, ns)
	// Anyone else (this host, here) gets no answer from it.
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(engine, "tcp://"), 5*time.Second); err != nil {
		t.Fatal(err)
	} else {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, "GET /_ping HTTP/1.0\r\n\r\n")
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Fatalf("the relay to the engine answered a client that is not the release's pod: %q", b)
		}
		c.Close()
	}
	phase("relay to the lab's Docker Engine on " + engine)

	values := fmt.Sprintf(`image: {repository: %s, tag: %q, pullPolicy: Never}
# The lab's dispatcher refuses hostPath volumes (its Docker backend's policy) and fsGroup (no backend has it).
dockerSocket: {enabled: false}
dataDir: {hostPath: ""}
podSecurityContext: {fsGroup: null}
# The virtual kubelet keeps a deleted pod for its whole grace period, however soon its containers end.
terminationGracePeriodSeconds: 5
nodeSelector: {%s: %s}
tolerations:
`, imageRepo, imageTag, labkube.NodeTypeLabel, labkube.NodeTypeValue)
	if len(lc.Taints) == 0 {
		t.Fatalf("the virtual node %s has no taint of its own, not even %s", lc.Node, labkube.NodeTaint)
	}
	for _, taint := range lc.Taints {
		values += fmt.Sprintf("  - {key: %q, operator: Exists, effect: %s}\n", taint.Key, taint.Effect)
	}
	values += fmt.Sprintf(`config:
  instance: %s
  backends:
    - name: docker
      config: {host: %q}
`, ns, engine)
	valuesPath := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(valuesPath, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	runHelm(t, "install", release, chart, "--namespace", ns, "--kubeconfig", lc.Kubeconfig, "-f", valuesPath)
	installed = true
	phase("helm install")

	d := waitAvailable(t, core, apps, ns)
	phase("Deployment " + d.Name + " available")

	// The pod's address on the engine's bridge, from its pause container (the virtual kubelet reports
	// 127.0.0.1 for every pod of the lab's node).
	ip, err := podAddress(ns)
	if err != nil {
		t.Fatal(err)
	}
	var metricsPort int32
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == "metrics" {
			metricsPort = p.ContainerPort
		}
	}
	base := "http://" + net.JoinHostPort(ip, strconv.Itoa(int(metricsPort)))
	if code, body := get(base + "/healthz"); code != http.StatusOK {
		t.Fatalf("GET %s/healthz: %d %s", base, code, body)
	}
	var rd dispatcher.Readiness
	var code int
	var body string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if code, body = get(base + "/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s/readyz did not answer 200 within 60 s: %d %s", base, code, body)
		}
	}
	if err := json.Unmarshal([]byte(body), &rd); err != nil {
		t.Fatalf("/readyz: %v: %s", err, body)
	}
	if !rd.Ready || len(rd.Backends) != 1 || rd.Backends[0].Name != "docker" || rd.Backends[0].State != "up" || rd.Backends[0].Engine == "" {
		t.Fatalf("/readyz: %s, want the docker backend up with its engine described", body)
	}
	// The backend in the pod made its pause image on the lab's engine: it really works that engine.
	if _, err := dockerOut("image", "inspect", pause); err != nil {
		t.Errorf("the release's Docker backend is up but its pause image %s is not on the engine: %v", pause, err)
	}
	phase(fmt.Sprintf("/readyz at %s: docker backend up, engine %s", base, rd.Backends[0].Engine))
	// The scrape the chart's annotations announce.
	if code, body := get(base + d.Spec.Template.Annotations["prometheus.io/path"]); code != http.StatusOK || !strings.Contains(body, "interlink_dispatcher_backend_up") {
		t.Errorf("scrape: %d %.200s", code, body)
	}

	runHelm(t, "uninstall", release, "--namespace", ns, "--kubeconfig", lc.Kubeconfig, "--wait", "--cascade", "foreground")
	installed = false
	phase("helm uninstall")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := waitNoPods(ctx, core, ns); err != nil {
		t.Fatal(err)
	}
	if err := deleteNamespace(ctx, core, ns); err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	phase("namespace " + ns + " deleted")
	if err := waitNoContainers(ctx, ns); err != nil {
		t.Fatal(err)
	}
	phase("no container of " + ns + " left on the engine")
}

// engineRelay relays TCP connections from the Docker bridge's gateway to the lab's Docker Engine socket for
// the test's duration, and returns its address as a Docker host (tcp://ADDR). It answers only connections
// from the bridge address of a pause container of namespace ns (the chart's pod): the engine's API is root on
// this host.
func engineRelay(t *testing.T, ns string) string {
	t.Helper()
	gateway, err := dockerOut("network", "inspect", "bridge", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}")
	if err != nil || net.ParseIP(gateway) == nil {
		t.Fatalf("the Docker bridge's gateway: %q %v", gateway, err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(gateway, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			from, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			if ip, err := podAddress(ns); err != nil || ip != from {
				c.Close()
				continue
			}
			up, err := net.Dial("unix", labtest.DockerSocket)
			if err != nil {
				c.Close()
				continue
			}
			track(c, true)
			track(up, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				done := make(chan struct{}, 2)
				pipe := func(dst, src net.Conn) {
					_, _ = io.Copy(dst, src)
					// Half-close so that the other direction may still finish (a hijacked stream).
					if cw, ok := dst.(interface{ CloseWrite() error }); ok {
						_ = cw.CloseWrite()
					}
					done <- struct{}{}
				}
				go pipe(up, c)
				go pipe(c, up)
				<-done
				<-done
				c.Close()
				up.Close()
				track(c, false)
				track(up, false)
			}()
		}
	}()
	return "tcp://" + l.Addr().String()
}

// podAddress is the bridge address of the pause container the lab's Docker backend made for the one pod of
// namespace ns.
func podAddress(ns string) (string, error) {
	ids, err := dockerOut("ps", "-q", "--filter", "label="+pod.LabelNamespace+"="+ns, "--filter", "label="+pod.LabelRole+"="+pod.RolePause)
	if err != nil {
		return "", err
	}
	f := strings.Fields(ids)
	if len(f) != 1 {
		return "", fmt.Errorf("%d running pause containers of namespace %s on the lab's engine, want 1", len(f), ns)
	}
	ip, err := dockerOut("inspect", "-f", "{{.NetworkSettings.IPAddress}}", f[0])
	if err != nil || net.ParseIP(ip) == nil {
		return "", fmt.Errorf("the address of pause container %s: %q %v", f[0], ip, err)
	}
	return ip, nil
}

// pauseRef is the pause image the Docker backend in image builds: interlink-dispatcher/pause tagged with the
// digest of the image's pause binary (backends/docker/pause.go).
func pauseRef(t *testing.T, image string) string {
	t.Helper()
	id, err := dockerOut("create", image)
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Command("docker", "rm", id).Run()
	bin := filepath.Join(t.TempDir(), "pause")
	if _, err := dockerOut("cp", id+":/usr/local/bin/pause", bin); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "interlink-dispatcher/pause:" + hex.EncodeToString(sum[:])[:16]
}

func dockerOut(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		return "", fmt.Errorf("docker %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// waitAvailable waits for the release's Deployment to be available, and fails at once when one of its pods
// fails (the lab's dispatcher refused it, say: the Deployment would only make another).
func waitAvailable(t *testing.T, core corev1client.CoreV1Interface, apps appsv1client.AppsV1Interface, ns string) *appsv1.Deployment {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for ; ; time.Sleep(time.Second) {
		ds, err := apps.Deployments(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds.Items) != 1 {
			t.Fatalf("%d Deployments in %s, want the chart's one", len(ds.Items), ns)
		}
		d := &ds.Items[0]
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue && d.Status.AvailableReplicas == 1 {
				return d
			}
		}
		pods, err := core.Pods(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodFailed {
				t.Fatalf("pod %s failed: %s", p.Name, podSummary(&p))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Deployment %s not available within 3 min: %+v", d.Name, d.Status)
		}
	}
}

func podSummary(p *corev1.Pod) string {
	s := fmt.Sprintf("phase %s %s %s", p.Status.Phase, p.Status.Reason, p.Status.Message)
	for _, c := range p.Status.ContainerStatuses {
		switch {
		case c.State.Terminated != nil:
			s += fmt.Sprintf("; %s terminated %d %s: %s", c.Name, c.State.Terminated.ExitCode, c.State.Terminated.Reason, c.State.Terminated.Message)
		case c.State.Waiting != nil:
			s += fmt.Sprintf("; %s waiting %s: %s", c.Name, c.State.Waiting.Reason, c.State.Waiting.Message)
		case c.State.Running != nil:
			s += fmt.Sprintf("; %s running since %s", c.Name, c.State.Running.StartedAt)
		}
	}
	return s
}

func logPodStatuses(t *testing.T, core corev1client.CoreV1Interface, ns string) {
	pods, err := core.Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Logf("pods of %s: %v", ns, err)
		return
	}
	for _, p := range pods.Items {
		t.Logf("pod %s: %s", p.Name, podSummary(&p))
	}
	if ids, err := dockerOut("ps", "-aq", "--filter", "label="+pod.LabelNamespace+"="+ns, "--filter", "label="+pod.LabelRole+"="+pod.RoleContainer); err == nil {
		for _, id := range strings.Fields(ids) {
			out, _ := exec.Command("docker", "logs", "--tail", "40", id).CombinedOutput()
			t.Logf("docker logs %s:\n%s", id, out)
		}
	}
}

func waitNoPods(ctx context.Context, core corev1client.CoreV1Interface, ns string) error {
	for {
		pods, err := core.Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("%d pods left, the first %s: %s", len(pods.Items), pods.Items[0].Name, podSummary(&pods.Items[0]))
			}
			return fmt.Errorf("the pods of %s are not gone after helm uninstall: %v", ns, err)
		case <-time.After(time.Second):
		}
	}
}

// deleteNamespace deletes ns and waits until the API server has it no more.
func deleteNamespace(ctx context.Context, core corev1client.CoreV1Interface, ns string) error {
	if err := core.Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	for {
		_, err := core.Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not gone: %v", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// waitNoContainers waits until the lab's engine has no container of namespace ns: the lab's dispatcher
// deleted the release's pod.
func waitNoContainers(ctx context.Context, ns string) error {
	for {
		ids, err := dockerOut("ps", "-aq", "--filter", "label="+pod.LabelNamespace+"="+ns)
		if err == nil && ids == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containers of namespace %s left on the lab's engine: %q %v", ns, ids, err)
		case <-time.After(time.Second):
		}
	}
}

// sweepInstallLeftovers deletes the namespaces of this test older than an hour: a run that was killed never
// ran its cleanup. Deleting a namespace makes the virtual kubelet delete its pods on the lab's engine.
func sweepInstallLeftovers(t *testing.T, core corev1client.CoreV1Interface) {
	nss, err := core.Namespaces().List(t.Context(), metav1.ListOptions{LabelSelector: installLabel})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nss.Items {
		if n.DeletionTimestamp == nil && time.Since(n.CreationTimestamp.Time) > time.Hour {
			t.Logf("deleting namespace %s, left by a run %s ago", n.Name, time.Since(n.CreationTimestamp.Time).Round(time.Minute))
			_ = core.Namespaces().Delete(t.Context(), n.Name, metav1.DeleteOptions{})
		}
	}
}
