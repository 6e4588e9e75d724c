package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// podObjects is what an engine and the data directory hold for one pod UID.
type podObjects struct {
	units int            // Docker pause containers, Podman pods, SLURM jobs not yet ended
	ids   []string       // the engine's ids of those units
	live  map[string]int // containers not exited, by Kubernetes container name (Docker, Podman)
	all   []string       // every object of the pod in any state, named for a message
	dir   bool           // <data_dir>/backends/<backend>/pods/<uid> exists
	files []string       // the names in that directory, for a message
}

// inventory is what an engine holds for one dispatcher instance, asked from the engine itself.
type inventory struct {
	pods  map[string]*podObjects
	stray []string // objects labelled with the instance but with no pod UID
}

func (inv *inventory) of(uid string) *podObjects {
	o := inv.pods[uid]
	if o == nil {
		o = &podObjects{live: map[string]int{}}
		inv.pods[uid] = o
	}
	return o
}

// problems returns a sentence for each way inv differs from exactly one object set for each pod of want
// and nothing else: a pod lost (no set, or a container missing), duplicated (two sets, or two live
// containers of one name), or orphaned (objects of a pod not in want, or of none).
func (inv *inventory) problems(k kind, want []*v1.Pod) []string {
	var out []string
	wanted := map[string]bool{}
	for _, p := range want {
		uid := string(p.UID)
		wanted[uid] = true
		o := inv.pods[uid]
		if o == nil {
			out = append(out, fmt.Sprintf("pod %s: lost, the engine has nothing of it", uid))
			continue
		}
		if o.units != 1 {
			out = append(out, fmt.Sprintf("pod %s: %d object sets (%s), want 1", uid, o.units, strings.Join(o.all, ", ")))
		}
		if !o.dir {
			out = append(out, fmt.Sprintf("pod %s: no pod directory", uid))
		}
		if k.name != slurmKind.name { // a SLURM job's containers are processes of the job
			for _, c := range p.Spec.Containers {
				if n := o.live[c.Name]; n != 1 {
					out = append(out, fmt.Sprintf("pod %s: %d live containers %q, want 1", uid, n, c.Name))
				}
			}
		}
	}
	uids := make([]string, 0, len(inv.pods))
	for uid := range inv.pods {
		uids = append(uids, uid)
	}
	sort.Strings(uids)
	for _, uid := range uids {
		if o := inv.pods[uid]; !wanted[uid] {
			what := strings.Join(o.all, ", ")
			if o.dir {
				what = strings.TrimPrefix(what+", its pod directory ("+strings.Join(o.files, " ")+")", ", ")
			}
			out = append(out, fmt.Sprintf("pod %s: orphaned, should have nothing but has %s", uid, what))
		}
	}
	for _, s := range inv.stray {
		out = append(out, "orphaned: "+s)
	}
	return out
}

// takeInventory asks k's engine for every object labelled with instance and reads the pod directories.
func takeInventory(k kind, instance, dataDir string) (inventory, error) {
	inv := inventory{pods: map[string]*podObjects{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	switch k.name {
	case dockerKind.name:
		err = dockerInventory(ctx, &inv, instance)
	case podmanKind.name:
		err = podmanInventory(ctx, &inv, instance)
	case slurmKind.name:
		err = slurmInventory(ctx, &inv, instance)
	default:
		err = fmt.Errorf("no inventory for backend %s", k.name)
	}
	if err != nil {
		return inv, err
	}
	entries, err := os.ReadDir(filepath.Join(dataDir, "backends", k.name, "pods"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return inv, err
	}
	for _, e := range entries {
		// A name that is no pod UID is the backend's own (SLURM's .trash of deleted pods' directories).
		if e.IsDir() && pod.ValidPodUID(e.Name()) == nil {
			o := inv.of(e.Name())
			o.dir = true
			if names, err := os.ReadDir(filepath.Join(dataDir, "backends", k.name, "pods", e.Name())); err == nil {
				for _, n := range names {
					o.files = append(o.files, n.Name())
				}
			}
		}
	}
	return inv, nil
}

func instanceFilter(instance string) filters.Args {
	return filters.NewArgs(filters.Arg("label", pod.LabelInstance+"="+instance))
}

func dockerClient() (*client.Client, error) {
	return client.NewClientWithOpts(client.WithHost("unix://"+labtest.DockerSocket), client.WithAPIVersionNegotiation())
}

func dockerInventory(ctx context.Context, inv *inventory, instance string) error {
	cli, err := dockerClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: instanceFilter(instance)})
	if err != nil {
		return fmt.Errorf("docker container list: %w", err)
	}
	for _, c := range cs {
		uid := c.Labels[pod.LabelPodUID]
		name := strings.TrimPrefix(strings.Join(c.Names, ","), "/")
		if uid == "" {
			inv.stray = append(inv.stray, "docker container "+name)
			continue
		}
		o := inv.of(uid)
		o.all = append(o.all, fmt.Sprintf("container %s (%s)", name, c.State))
		switch role := c.Labels[pod.LabelRole]; {
		case role == pod.RolePause:
			o.units++
			o.ids = append(o.ids, c.ID)
		case role == pod.RoleContainer && c.State != "exited" && c.State != "dead":
			o.live[c.Labels[pod.LabelContainer]]++
		}
	}
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: instanceFilter(instance)})
	if err != nil {
		return fmt.Errorf("docker volume list: %w", err)
	}
	for _, v := range vols.Volumes {
		if uid := v.Labels[pod.LabelPodUID]; uid != "" {
			inv.of(uid).all = append(inv.of(uid).all, "volume "+v.Name)
		} else {
			inv.stray = append(inv.stray, "docker volume "+v.Name)
		}
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: instanceFilter(instance)})
	if err != nil {
		return fmt.Errorf("docker network list: %w", err)
	}
	for _, n := range nets {
		if uid := n.Labels[pod.LabelPodUID]; uid != "" {
			inv.of(uid).all = append(inv.of(uid).all, "network "+n.Name)
		} else {
			inv.stray = append(inv.stray, "docker network "+n.Name)
		}
	}
	return nil
}

// libpod calls the lab's Podman service (libpod REST API) and decodes its JSON answer into out.
func libpod(ctx context.Context, method, path string, out any) error {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", labtest.PodmanSocket)
	}}}
	req, err := http.NewRequestWithContext(ctx, method, "http://d/v4.0.0/libpod"+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("podman %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("podman %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

func podmanLabelQuery(instance string) string {
	return podmanLabelFilter(pod.LabelInstance + "=" + instance)
}

// podmanLabelFilter is the query of a libpod list of what has label ("key" or "key=value").
func podmanLabelFilter(label string) string {
	f, _ := json.Marshal(map[string][]string{"label": {label}})
	return "filters=" + url.QueryEscape(string(f))
}

type podmanObject struct {
	ID     string `json:"Id"`
	Name   string
	Names  []string
	State  string
	Status string
	Labels map[string]string
}

func podmanInventory(ctx context.Context, inv *inventory, instance string) error {
	q := podmanLabelQuery(instance)
	var pods, ctrs []podmanObject
	if err := libpod(ctx, "GET", "/pods/json?"+q, &pods); err != nil {
		return err
	}
	if err := libpod(ctx, "GET", "/containers/json?all=true&"+q, &ctrs); err != nil {
		return err
	}
	var vols []podmanObject
	if err := libpod(ctx, "GET", "/volumes/json?"+q, &vols); err != nil {
		return err
	}
	for _, p := range pods {
		if uid := p.Labels[pod.LabelPodUID]; uid != "" {
			o := inv.of(uid)
			o.units++
			o.ids = append(o.ids, p.ID)
			o.all = append(o.all, fmt.Sprintf("pod %s (%s)", p.Name, p.Status))
		} else {
			inv.stray = append(inv.stray, "podman pod "+p.Name)
		}
	}
	for _, c := range ctrs {
		name := strings.Join(c.Names, ",")
		uid := c.Labels[pod.LabelPodUID]
		if uid == "" {
			inv.stray = append(inv.stray, "podman container "+name)
			continue
		}
		o := inv.of(uid)
		o.all = append(o.all, fmt.Sprintf("container %s (%s)", name, c.State))
		if c.Labels[pod.LabelRole] == pod.RoleContainer && c.State != "exited" && c.State != "stopped" && c.State != "dead" {
			o.live[c.Labels[pod.LabelContainer]]++
		}
	}
	for _, v := range vols {
		if uid := v.Labels[pod.LabelPodUID]; uid != "" {
			inv.of(uid).all = append(inv.of(uid).all, "volume "+v.Name)
		} else {
			inv.stray = append(inv.stray, "podman volume "+v.Name)
		}
	}
	return nil
}

// slurmJob is one line of squeue: the backend names each job after its pod's UID.
type slurmJob struct{ id, name, state string }

// slurmJobs lists the jobs whose name starts with the instance name, in every state squeue still shows.
func slurmJobs(ctx context.Context, instance string) ([]slurmJob, error) {
	out, err := exec.CommandContext(ctx, "squeue", "-h", "-a", "-t", "all", "-o", "%i|%j|%T").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("squeue: %v: %s", err, strings.TrimSpace(string(out)))
	}
	var jobs []slurmJob
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) == 3 && strings.HasPrefix(f[1], instance+"-") {
			jobs = append(jobs, slurmJob{f[0], f[1], f[2]})
		}
	}
	return jobs, nil
}

// slurmEnded are the states of a job that is over (squeue shows them for MinJobAge after the end).
var slurmEnded = map[string]bool{"COMPLETED": true, "CANCELLED": true, "FAILED": true, "TIMEOUT": true,
	"NODE_FAIL": true, "PREEMPTED": true, "BOOT_FAIL": true, "DEADLINE": true, "OUT_OF_MEMORY": true, "REVOKED": true}

func slurmInventory(ctx context.Context, inv *inventory, instance string) error {
	jobs, err := slurmJobs(ctx, instance)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if slurmEnded[j.state] {
			continue
		}
		o := inv.of(j.name)
		o.units++
		o.ids = append(o.ids, j.id)
		o.all = append(o.all, fmt.Sprintf("job %s (%s)", j.id, j.state))
	}
	return nil
}

// sweep removes every object the engine of k holds for instance and returns how many it removed.
func sweep(k kind, instance string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := 0
	switch k.name {
	case dockerKind.name:
		cli, err := dockerClient()
		if err != nil {
			return 0, err
		}
		defer cli.Close()
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: instanceFilter(instance)})
		if err != nil {
			return 0, err
		}
		for _, c := range cs {
			if cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}) == nil {
				n++
			}
		}
		if vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: instanceFilter(instance)}); err == nil {
			for _, v := range vols.Volumes {
				if cli.VolumeRemove(ctx, v.Name, true) == nil {
					n++
				}
			}
		}
		if nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: instanceFilter(instance)}); err == nil {
			for _, nw := range nets {
				if cli.NetworkRemove(ctx, nw.ID) == nil {
					n++
				}
			}
		}
	case podmanKind.name:
		q := podmanLabelQuery(instance)
		var pods, ctrs, vols []podmanObject
		if err := libpod(ctx, "GET", "/pods/json?"+q, &pods); err != nil {
			return 0, err
		}
		for _, p := range pods {
			if libpod(ctx, "DELETE", "/pods/"+p.ID+"?force=true", nil) == nil {
				n++
			}
		}
		if libpod(ctx, "GET", "/containers/json?all=true&"+q, &ctrs) == nil {
			for _, c := range ctrs {
				if libpod(ctx, "DELETE", "/containers/"+c.ID+"?force=true&v=true", nil) == nil {
					n++
				}
			}
		}
		if libpod(ctx, "GET", "/volumes/json?"+q, &vols) == nil {
			for _, v := range vols {
				if libpod(ctx, "DELETE", "/volumes/"+url.PathEscape(v.Name)+"?force=true", nil) == nil {
					n++
				}
			}
		}
	case slurmKind.name:
		jobs, err := slurmJobs(ctx, instance)
		if err != nil {
			return 0, err
		}
		for _, j := range jobs {
			if slurmEnded[j.state] {
				continue
			}
			if exec.CommandContext(ctx, "scancel", j.id).Run() == nil {
				n++
			}
		}
		// A cancelled job still writes into its pod directory until it ends (KillWait at most): wait for
		// that, so that the test's temporary directory can be removed.
		for {
			jobs, err := slurmJobs(ctx, instance)
			if err != nil {
				return n, err
			}
			live := 0
			for _, j := range jobs {
				if !slurmEnded[j.state] {
					live++
				}
			}
			if live == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return n, fmt.Errorf("%d cancelled jobs still not ended", live)
			case <-time.After(time.Second):
			}
		}
	}
	return n, nil
}

// staleAfter is how old an instance of this package must be for what the engines hold of it to be left over:
// longer than any run of the package may last (make bench gives it 4 hours).
const staleAfter = 5 * time.Hour

var (
	staleMu    sync.Mutex
	staleSwept = map[string]bool{} // by kind name: once per process
)

// sweepStale removes, once per process and kind, what the engine of k still holds for instances of this
// package older than staleAfter. A run stopped before its clean-up (a timeout, an interrupted bench) leaves
// its pods behind, and they cost every later run: Podman lists in time proportional to all its containers,
// whatever the filter (a list matching nothing took 50-80 ms beside 400 left over, against a few ms).
func sweepStale(tb testing.TB, k kind) {
	staleMu.Lock()
	defer staleMu.Unlock()
	if staleSwept[k.name] {
		return
	}
	staleSwept[k.name] = true
	instances, err := instancesOf(k)
	if err != nil {
		tb.Logf("looking for leftovers of earlier runs on %s: %v", k.name, err)
		return
	}
	for _, instance := range slices.Sorted(maps.Keys(instances)) {
		started := instances[instance]
		if time.Since(started) < staleAfter {
			continue
		}
		if n, err := sweep(k, instance); err != nil {
			tb.Logf("removing the leftovers of instance %s (started %s) from %s: %v", instance, started.Format(time.RFC3339), k.name, err)
		} else if n > 0 {
			tb.Logf("removed %d %s objects left over by instance %s (started %s)", n, k.name, instance, started.Format(time.RFC3339))
		}
	}
}

// instanceName is the instance of a run of start named name that began at t.
func instanceName(name string, t time.Time) string {
	return "faults-" + name + "-" + strconv.FormatInt(t.UnixNano(), 36)
}

// splitInstance reads a name this package gave: an instance (instanceName), the bench's raw side of one
// (which adds -raw<N>), or a SLURM job of either (which adds the pod's name). It returns the name up to the
// instance's start time, and that time.
func splitInstance(s string) (prefix string, started time.Time, ok bool) {
	words := strings.Split(s, "-")
	if len(words) < 2 || words[0] != "faults" {
		return "", time.Time{}, false
	}
	for i, word := range words[1:] {
		ns, err := strconv.ParseInt(word, 36, 64)
		if t := time.Unix(0, ns); err == nil && t.Year() >= 2020 && t.Before(time.Now().Add(time.Hour)) {
			return strings.Join(words[:i+2], "-"), t, true
		}
	}
	return "", time.Time{}, false
}

// instancesOf finds what the engine of k holds of this package's runs, by the instance to sweep and when it
// started: Docker's and Podman's instance labels (an instance, or the bench's raw side of one), SLURM's job
// names up to the instance's time (a prefix of every job of the instance and of its raw side).
func instancesOf(k kind) (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]time.Time{}
	addLabel := func(label string) {
		if _, started, ok := splitInstance(label); ok {
			out[label] = started
		}
	}
	switch k.name {
	case dockerKind.name:
		cli, err := dockerClient()
		if err != nil {
			return nil, err
		}
		defer cli.Close()
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", pod.LabelInstance))})
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			addLabel(c.Labels[pod.LabelInstance])
		}
	case podmanKind.name:
		var ctrs []podmanObject
		if err := libpod(ctx, "GET", "/containers/json?all=true&"+podmanLabelFilter(pod.LabelInstance), &ctrs); err != nil {
			return nil, err
		}
		for _, c := range ctrs {
			addLabel(c.Labels[pod.LabelInstance])
		}
	case slurmKind.name:
		jobs, err := slurmJobs(ctx, "faults")
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			if prefix, started, ok := splitInstance(j.name); ok {
				out[prefix] = started
			}
		}
	}
	return out, nil
}

// TestSplitInstance: the names this package gives are read back to the instance's start, which is what
// sweepStale goes by.
func TestSplitInstance(t *testing.T) {
	at := time.Date(2026, 12, 2, 13, 54, 56, 0, time.UTC)
	instance := instanceName("bench-podman", at)
	for _, name := range []string{instance, instance + "-raw400", instance + "-n400-7"} {
		prefix, started, ok := splitInstance(name)
		if !ok || prefix != instance || !started.Equal(at) {
			t.Errorf("splitInstance(%q) = %q, %v, %v; want %q, %v, true", name, prefix, started, ok, instance, at)
		}
	}
	for _, name := range []string{"lab-kube", "test-de4aad53e37b", "faults-bench", ""} {
		if prefix, _, ok := splitInstance(name); ok {
			t.Errorf("splitInstance(%q) = %q, true; want no instance of this package", name, prefix)
		}
	}
}
