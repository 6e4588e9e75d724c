// Package helm holds the dispatcher's Helm chart (interlink-dispatcher/) and the tests that lint it, render it
// and read what it renders: the objects as the Kubernetes API types (strictly, so a misspelt field fails),
// the probes, the scrape annotations, the config the dispatcher is given (loaded by the dispatcher's own
// loader, and served by a real dispatcher), and the values interLink's chart needs to reach it. helm is built
// from the Go module proxy by helm.sh (module tool/), once per go.mod and go.sum.
//
// TestChartInstallsIntoLab (install_test.go) installs it into the lab's cluster with the image of make image.
package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

const (
	chart     = "interlink-dispatcher"
	release   = "dispatcher"
	namespace = "interlink"
	// kubeVersion is what helm template assumes of the cluster (the chart asks for 1.25 or later).
	kubeVersion = "1.34.0"
)

var helmOnce struct {
	sync.Once
	path string
	err  error
}

// helm is the path of the helm binary helm.sh builds (or has built).
func helm(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		cmd := exec.Command("bash", "helm.sh")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			helmOnce.err = fmt.Errorf("bash helm.sh: %v\n%s", err, stderr.String())
			return
		}
		helmOnce.path = strings.TrimSpace(string(out))
	})
	if helmOnce.err != nil {
		t.Fatal(helmOnce.err)
	}
	return helmOnce.path
}

func runHelm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(helm(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Sets of values the chart must take: the defaults and the other ways values.yaml offers.
var valueSets = map[string][]string{
	"defaults":       nil,
	"claim":          {"--set", "dataDir.hostPath=", "--set", "dataDir.persistentVolumeClaim.enabled=true", "--set", "dockerSocket.enabled=false"},
	"emptyDir":       {"--set", "dataDir.hostPath=", "--set", "dockerSocket.enabled=false"},
	"docker-gid":     {"--set", "dockerSocket.gid=998"},
	"other-hostPath": {"--set", "dataDir.hostPath=/srv/interlink-dispatcher"},
	"no-scrape":      {"--set", "metrics.scrapeAnnotations=false", "--set", "networkPolicy.enabled=false"},
	"other-ports":    {"--set", "service.port=4100", "--set", "metrics.port=9500"},
	"debug-and-rule": {"--set", "config.log.level=debug", "--set-json", `config.routing.rules=[{"name":"gpu","backend":"docker","match":{"resources":["nvidia.com/gpu"]}}]`},
}

// TestChartLint runs helm lint --strict with each set of values: a warning fails it too.
func TestChartLint(t *testing.T) {
	for name, set := range valueSets {
		t.Run(name, func(t *testing.T) {
			out := runHelm(t, append([]string{"lint", "--strict", chart, "--namespace", namespace}, set...)...)
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

// rendered is what helm template made, as the API's types.
type rendered struct {
	configMap     *corev1.ConfigMap
	service       *corev1.Service
	deployment    *appsv1.Deployment
	networkPolicy *networkingv1.NetworkPolicy
	pvc           *corev1.PersistentVolumeClaim
}

func render(t *testing.T, set ...string) rendered {
	t.Helper()
	out := runHelm(t, append([]string{"template", release, chart, "--namespace", namespace, "--kube-version", kubeVersion}, set...)...)
	var r rendered
	for _, doc := range strings.Split(out, "\n---\n") {
		if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
			continue
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		var obj any
		switch head.Kind {
		case "ConfigMap":
			r.configMap = &corev1.ConfigMap{}
			obj = r.configMap
		case "Service":
			r.service = &corev1.Service{}
			obj = r.service
		case "Deployment":
			r.deployment = &appsv1.Deployment{}
			obj = r.deployment
		case "NetworkPolicy":
			r.networkPolicy = &networkingv1.NetworkPolicy{}
			obj = r.networkPolicy
		case "PersistentVolumeClaim":
			r.pvc = &corev1.PersistentVolumeClaim{}
			obj = r.pvc
		default:
			t.Fatalf("the chart renders a %q, which this test does not know:\n%s", head.Kind, doc)
		}
		// Strict: a field the API type does not have (a misspelling) fails here instead of being dropped by
		// the API server.
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: %v\n%s", head.Kind, err, doc)
		}
	}
	if r.configMap == nil || r.service == nil || r.deployment == nil {
		t.Fatalf("helm template made no ConfigMap, Service or Deployment:\n%s", out)
	}
	return r
}

// The rendered objects fit together: probes on the metrics port's /healthz and /readyz, the scrape
// annotations naming that port, the config mounted where the dispatcher is told to read it, the Service
// selecting the pod, and the ports the config listens on being the container's.
func TestChartTemplate(t *testing.T) {
	for name, set := range valueSets {
		t.Run(name, func(t *testing.T) {
			r := render(t, set...)
			d := r.deployment
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Errorf("replicas %v, strategy %q: one dispatcher per journal, replaced not rolled", d.Spec.Replicas, d.Spec.Strategy.Type)
			}
			pod := d.Spec.Template
			if len(pod.Spec.Containers) != 1 {
				t.Fatalf("%d containers, want the dispatcher alone", len(pod.Spec.Containers))
			}
			c := pod.Spec.Containers[0]
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			metricsPort, apiPort := ports["metrics"], ports["api"]
			if metricsPort == 0 || apiPort == 0 {
				t.Fatalf("container ports %v: want api and metrics", c.Ports)
			}
			probe := func(what string, p *corev1.Probe, path string) {
				t.Helper()
				switch {
				case p == nil:
					t.Errorf("no %s probe", what)
				case p.HTTPGet == nil:
					t.Errorf("%s probe is not an httpGet: %+v", what, p)
				case p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "metrics":
					t.Errorf("%s probe GETs %s on port %s, want %s on metrics", what, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
				}
			}
			probe("startup", c.StartupProbe, "/healthz")
			probe("liveness", c.LivenessProbe, "/healthz")
			probe("readiness", c.ReadinessProbe, "/readyz")

			scrape := pod.Annotations["prometheus.io/scrape"] == "true"
			if want := !slices.Contains(set, "metrics.scrapeAnnotations=false"); scrape != want {
				t.Errorf("pod annotations %v: scrape %v, want %v", pod.Annotations, scrape, want)
			}
			if scrape {
				for _, a := range []map[string]string{pod.Annotations, r.service.Annotations} {
					if a["prometheus.io/port"] != strconv.Itoa(int(metricsPort)) || a["prometheus.io/path"] != "/metrics" {
						t.Errorf("scrape annotations %v do not name /metrics on the metrics port %d", a, metricsPort)
					}
				}
			}
			if pod.Annotations["checksum/config"] == "" {
				t.Error("no checksum/config annotation: a config change would not roll the pod")
			}

			// The config is mounted where the command reads it.
			if len(c.Command) != 1 || filepath.Base(c.Command[0]) != "interlink-dispatcher" {
				t.Errorf("command %q, want the dispatcher's binary", c.Command)
			}
			i := slices.Index(c.Args, "--config")
			if i < 0 || i+1 >= len(c.Args) {
				t.Fatalf("args %q pass no --config", c.Args)
			}
			configPath := c.Args[i+1]
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				mounts[m.Name] = m
			}
			volumes := map[string]corev1.Volume{}
			for _, v := range pod.Spec.Volumes {
				volumes[v.Name] = v
			}
			cm := volumes["config"].ConfigMap
			if cm == nil || cm.Name != r.configMap.Name || filepath.Join(mounts["config"].MountPath, "config.yaml") != configPath {
				t.Errorf("--config %s is not the ConfigMap %s's config.yaml mounted (volume %+v, mount %+v)", configPath, r.configMap.Name, volumes["config"], mounts["config"])
			}
			if _, ok := r.configMap.Data["config.yaml"]; !ok {
				t.Fatalf("ConfigMap has no config.yaml key: %v", r.configMap.Data)
			}
			if mounts["tmp"].MountPath != "/tmp" || volumes["tmp"].EmptyDir == nil {
				t.Errorf("no writable /tmp for the backends' sockets under a read-only root: %+v", mounts["tmp"])
			}

			cfg := loadRenderedConfig(t, r.configMap.Data["config.yaml"], nil)
			if cfg.Listen.TCP != fmt.Sprintf("0.0.0.0:%d", apiPort) || cfg.Metrics.Listen != fmt.Sprintf("0.0.0.0:%d", metricsPort) {
				t.Errorf("config listens on %s and %s, the container's ports are api %d and metrics %d", cfg.Listen.TCP, cfg.Metrics.Listen, apiPort, metricsPort)
			}
			if mounts["data"].MountPath != cfg.DataDir {
				t.Errorf("data_dir %s is not the data volume's mount %s", cfg.DataDir, mounts["data"].MountPath)
			}
			data := volumes["data"]
			switch {
			case slices.Contains(set, "dataDir.persistentVolumeClaim.enabled=true"):
				if data.PersistentVolumeClaim == nil || r.pvc == nil || data.PersistentVolumeClaim.ClaimName != r.pvc.Name {
					t.Errorf("data volume %+v, claim %v: want the chart's claim", data, r.pvc)
				}
			case slices.Contains(set, "dataDir.hostPath="):
				if data.EmptyDir == nil {
					t.Errorf("data volume %+v, want an emptyDir", data)
				}
			default:
				// The Docker backend's volumes are bind-mounted by the node's dockerd: the same path there.
				if data.HostPath == nil || data.HostPath.Path != cfg.DataDir {
					t.Errorf("data volume %+v: want the node's %s", data, cfg.DataDir)
				}
			}
			// The node's dockerd bind-mounts the shim by its path: it must be beneath the hostPath data_dir.
			if !slices.Contains(set, "dockerSocket.enabled=false") {
				shim := ""
				for _, b := range cfg.Backends {
					if b.Name == "docker" {
						shim, _ = b.Config["shim"].(string)
					}
				}
				if data.HostPath == nil || !strings.HasPrefix(shim, data.HostPath.Path+"/") {
					t.Errorf("docker backend's shim %q is not on the node beneath the data hostPath %+v", shim, data.HostPath)
				}
			}
			if slices.Contains(set, "dockerSocket.gid=998") && !slices.Contains(pod.Spec.SecurityContext.SupplementalGroups, 998) {
				t.Errorf("supplementalGroups %v lack the docker socket's group 998", pod.Spec.SecurityContext.SupplementalGroups)
			}
			if slices.Contains(set, "config.log.level=debug") && cfg.Log.Level != "debug" {
				t.Errorf("log.level %q: values' config did not reach the ConfigMap", cfg.Log.Level)
			}
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("container securityContext %+v: want a read-only root and no privilege escalation", sc)
			}
			if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
				t.Error("the pod mounts a service account token; the dispatcher uses no Kubernetes API")
			}

			svc := r.service
			for k, v := range svc.Spec.Selector {
				if pod.Labels[k] != v {
					t.Errorf("Service selects %s=%s, the pod has %q", k, v, pod.Labels[k])
				}
			}
			svcPorts := map[string]string{}
			for _, p := range svc.Spec.Ports {
				svcPorts[p.Name] = p.TargetPort.String()
			}
			if svcPorts["api"] != "api" || svcPorts["metrics"] != "metrics" {
				t.Errorf("Service ports %+v do not lead to the container's api and metrics", svc.Spec.Ports)
			}
			if !svc.Spec.PublishNotReadyAddresses {
				t.Error("the Service drops the API whenever /readyz fails (one backend down)")
			}
		})
	}
}

// A change of config changes the pod template's checksum, so that helm upgrade rolls the pod.
func TestChartConfigChecksum(t *testing.T) {
	a := render(t).deployment.Spec.Template.Annotations["checksum/config"]
	b := render(t, "--set", "config.log.level=debug").deployment.Spec.Template.Annotations["checksum/config"]
	if a == "" || a == b {
		t.Fatalf("checksum/config %q before and %q after a config change", a, b)
	}
}

// A chart without backends, with a nameless one, or with the node's Docker socket but no hostPath for
// data_dir fails to render with a sentence that names the key.
func TestChartRefusesNoBackends(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"--set", "config.backends=null"}, "config.backends must list at least one backend"},
		{[]string{"--set-json", `config.backends=[{"config":{}}]`}, "every entry of config.backends needs a name"},
		{[]string{"--set", "dataDir.hostPath="}, "dockerSocket.enabled needs dataDir.hostPath"},
	} {
		out, err := exec.Command(helm(t), append([]string{"template", release, chart, "--kube-version", kubeVersion}, tc.set...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("helm template %v: %v, want an error saying %q\n%s", tc.set, err, tc.want, out)
		}
	}
}

// The example of interLink's values points its plugin at the Service as rendered for the release and
// namespace it names, and its node's label is the one the NetworkPolicy admits to the API.
func TestInterLinkValuesExample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chart, "values-interlink-example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		NodeName  string `json:"nodeName"`
		Interlink struct {
			Enabled bool `json:"enabled"`
		} `json:"interlink"`
		Plugin struct {
			Enabled bool    `json:"enabled"`
			Address string  `json:"address"`
			Port    int     `json:"port"`
			Socket  *string `json:"socket"`
		} `json:"plugin"`
	}
	if err := yaml.UnmarshalStrict(raw, &v); err != nil {
		t.Fatalf("values-interlink-example.yaml: %v", err)
	}
	r := render(t)
	want := fmt.Sprintf("http://%s.%s.svc.cluster.local", r.service.Name, namespace)
	if v.Plugin.Enabled || v.Plugin.Socket != nil || v.Plugin.Address != want {
		t.Errorf("plugin %+v: want enabled false, no socket, address %s", v.Plugin, want)
	}
	var apiPort int32
	for _, p := range r.service.Spec.Ports {
		if p.Name == "api" {
			apiPort = p.Port
		}
	}
	if int32(v.Plugin.Port) != apiPort {
		t.Errorf("plugin.port %d, the Service's api port is %d", v.Plugin.Port, apiPort)
	}
	if !v.Interlink.Enabled {
		t.Error("interlink.enabled is false: interLink's chart would render no InterLinkConfig with SidecarURL")
	}
	np := r.networkPolicy
	if np == nil {
		t.Fatal("no NetworkPolicy rendered by default")
	}
	admitted := false
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) != 1 || rule.Ports[0].Port.String() != "api" {
			continue
		}
		for _, peer := range rule.From {
			if peer.PodSelector != nil && peer.PodSelector.MatchLabels["app"] == v.NodeName {
				admitted = true
			}
		}
	}
	if !admitted {
		t.Errorf("NetworkPolicy %+v does not admit interLink's pod (app: %s) to the api port", np.Spec.Ingress, v.NodeName)
	}
}

// loadRenderedConfig writes the ConfigMap's config.yaml to a file and loads it with the dispatcher's own
// loader, with the backends' binaries (paths inside the image) replaced by this checkout's builds and env
// added after.
func loadRenderedConfig(t *testing.T, text string, env []string) dispatcher.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var file struct {
		Backends []struct {
			Name   string `json:"name"`
			Binary string `json:"binary"`
		} `json:"backends"`
	}
	if err := yaml.Unmarshal([]byte(text), &file); err != nil {
		t.Fatalf("config.yaml: %v\n%s", err, text)
	}
	var environ []string
	for _, b := range file.Backends {
		pkg := "./cmd/" + filepath.Base(b.Binary)
		if _, err := os.Stat(filepath.Join(labtest.RepoRoot(), pkg)); err != nil {
			t.Fatalf("backend %s: binary %s is not one of the image's (no %s)", b.Name, b.Binary, pkg)
		}
		environ = append(environ, "INTERLINK_DISPATCHER_BACKENDS_"+strings.ToUpper(b.Name)+"_BINARY="+labtest.BuildBackend(t, pkg))
	}
	cfg, err := dispatcher.LoadConfig(dispatcher.LoadOptions{Path: path, Environ: append(environ, env...)})
	if err != nil {
		t.Fatalf("the rendered config.yaml does not load: %v\n%s", err, text)
	}
	return cfg
}

// TestChartConfigServesProbes runs a real dispatcher on the chart's default config, against the lab's Docker
// Engine as the chart's pod would use its node's, with the pod's user and groups (the docker socket's group
// given as dockerSocket.gid), and asks the probes' paths on the metrics listener from the rendered
// Deployment: /healthz and /readyz answer 200 (the allow-list of the values admits the prober, and the
// Docker backend works as that user, with the shim where the chart tells it to look on the node), and a pod
// created through the API port runs. Kubernetes is not needed for that; the listeners are moved to loopback
// and the hostPath is a temporary folder.
func TestChartConfigServesProbes(t *testing.T) {
	labtest.RequireDocker(t)
	dockerGroup, err := user.LookupGroup("docker")
	if err != nil {
		t.Fatalf("the lab's Docker socket has no docker group here: %v", err)
	}

	dir, err := os.MkdirTemp("", "helm-probes-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	if err := errors.Join(os.Chmod(dir, 0o755), os.Mkdir(data, 0o700)); err != nil {
		t.Fatal(err)
	}
	r := render(t, "--set", "dockerSocket.gid="+dockerGroup.Gid, "--set", "dataDir.hostPath="+data)
	spec := r.deployment.Spec.Template.Spec
	c := spec.Containers[0]

	// What the kubelet would give the container: the pod's user, group and supplementary groups.
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsUser == nil || psc.RunAsGroup == nil {
		t.Fatalf("the pod's securityContext %+v names no user and group", psc)
	}
	cred := &syscall.Credential{Uid: uint32(*psc.RunAsUser), Gid: uint32(*psc.RunAsGroup)}
	for _, g := range psc.SupplementalGroups {
		cred.Groups = append(cred.Groups, uint32(g))
	}
	if psc.FSGroup != nil {
		cred.Groups = append(cred.Groups, uint32(*psc.FSGroup))
	}
	if os.Geteuid() != 0 {
		t.Logf("not root: the dispatcher runs as this test's user, not as the pod's %d", cred.Uid)
		cred = nil
	}

	// The node's directory as values.yaml says to prepare it: owned by the pod's user, with the shim copied in.
	shim, err := os.ReadFile(labtest.BuildBinary(t, labtest.ShimPackage))
	if err != nil {
		t.Fatal(err)
	}
	shimPath := filepath.Join(data, "interlink-shim")
	if err := os.WriteFile(shimPath, shim, 0o755); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		if err := errors.Join(os.Chown(data, int(cred.Uid), int(cred.Gid)), os.Chown(shimPath, int(cred.Uid), int(cred.Gid))); err != nil {
			t.Fatal(err)
		}
	}

	apiAddr, metricsAddr := labtest.FreeAddr(t), labtest.FreeAddr(t)
	env := []string{
		"INTERLINK_DISPATCHER_LISTEN_TCP=" + apiAddr,
		"INTERLINK_DISPATCHER_METRICS_LISTEN=" + metricsAddr,
		"INTERLINK_DISPATCHER_INSTANCE=helm-test-" + strconv.Itoa(os.Getpid()),
	}
	cfg := loadRenderedConfig(t, r.configMap.Data["config.yaml"], env)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(r.configMap.Data["config.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	var environ []string
	for _, b := range cfg.Backends {
		environ = append(environ, "INTERLINK_DISPATCHER_BACKENDS_"+strings.ToUpper(b.Name)+"_BINARY="+b.Binary)
	}
	bin := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config", path)
	cmd.Env = append(append(os.Environ(), environ...), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var logs labtest.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("dispatcher's log:\n%s", logs.String())
		}
	})

	for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		url := "http://" + metricsAddr + p.HTTPGet.Path
		var code int
		var body string
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			code, body = get(url)
			// Not listening yet (0) or a backend still starting (503) may pass; any other answer will not.
			if code != 0 && code != http.StatusServiceUnavailable {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", url, code, body)
		}
	}
	runPod(t, "http://"+apiAddr)

	// The scrape the annotations announce.
	if code, body := get("http://" + metricsAddr + r.deployment.Spec.Template.Annotations["prometheus.io/path"]); code != http.StatusOK || !strings.Contains(body, "interlink_dispatcher_backend_up") {
		t.Errorf("scrape: %d %.200s", code, body)
	}
}

// runPod creates a pod through the API as interLink would, with a configMap mounted whole and through a
// subPath, waits for it to complete, reads its log and deletes it: the chart's config runs pods on the
// node's dockerd (volumes and shim by their node paths, the dispatcher as the pod's user).
func runPod(t *testing.T, api string) {
	t.Helper()
	uid := fmt.Sprintf("3d0c3f5e-%04x-4000-8000-%012x", os.Getpid()&0xffff, time.Now().UnixNano()&0xffffffffffff)
	pod := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "chart-check", Namespace: "default", UID: types.UID(uid)},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Volumes: []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm1"}}}}},
			Containers: []corev1.Container{{Name: "main", Image: labtest.BusyboxImage,
				Command: []string{"sh", "-c", "cat /etc/cfg/k; echo; cat /etc/app.conf"},
				VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"},
					{Name: "cfg", MountPath: "/etc/app.conf", SubPath: "app.conf"}}}},
		},
	}
	cm := corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm1", Namespace: "default"},
		Data: map[string]string{"k": "whole-volume", "app.conf": "through-subpath"}}
	body := []interlink.RetrievedPodData{{Pod: pod, Containers: []interlink.RetrievedContainer{{Name: "main", ConfigMaps: []corev1.ConfigMap{cm}}}}}
	if code, out := call(t, http.MethodPost, api+"/create", body); code != http.StatusOK {
		t.Fatalf("/create: %d %s", code, out)
	}
	t.Cleanup(func() {
		if code, out := call(t, http.MethodPost, api+"/delete", pod); code != http.StatusOK {
			t.Errorf("/delete: %d %s", code, out)
		}
	})
	var last string
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, out := call(t, http.MethodGet, api+"/status", []corev1.Pod{pod})
		var st []interlink.PodStatus
		if code == http.StatusOK && json.Unmarshal([]byte(out), &st) == nil && len(st) == 1 && len(st[0].Containers) == 1 {
			if term := st[0].Containers[0].State.Terminated; term != nil {
				if term.ExitCode != 0 {
					t.Fatalf("the pod's container ended %d %s: %s", term.ExitCode, term.Reason, term.Message)
				}
				break
			}
		}
		last = out
		if time.Now().After(deadline) {
			t.Fatalf("the pod did not complete within 90 s; last /status: %d %s", code, last)
		}
		time.Sleep(time.Second)
	}
	code, logs := call(t, http.MethodGet, api+"/getLogs", interlink.LogStruct{Namespace: "default", PodUID: uid, PodName: pod.Name, ContainerName: "main"})
	if code != http.StatusOK || logs != "whole-volume\nthrough-subpath" {
		t.Errorf("/getLogs: %d %q, want the configMap's two values", code, logs)
	}
}

// call sends body as JSON and returns the status and the answer.
func call(t *testing.T, method, url string, body any) (int, string) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func get(url string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
