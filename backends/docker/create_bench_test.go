package docker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// BenchmarkCreateDelete creates and deletes BENCH_PODS pods (default 20) through the backend alone, at the
// virtual kubelet's concurrency of 8, beside the raw engine doing a pod's work (a sandbox container holding
// the network and IPC namespaces, then the container joining them, each created and started; then stop with
// a grace of one second and remove both), in BENCH_ROUNDS rounds (default 3) that alternate raw and backend
// so that a change of the machine's load meets both alike. A create is done when Status says the pod runs.
// It prints each round's rates and ratio, and the engine calls a pod cost by op with their mean duration (to
// tell where a create's time goes beyond the engine's own work), and reports the median ratios.
// BENCH_RAW_SHIM=1 runs the raw side's container under the shim too, as the backend runs it.
//
//	BENCH_PODS=20 go test -count=1 -run '^$' -bench BenchmarkCreateDelete -benchtime 1x ./backends/docker/
func BenchmarkCreateDelete(b *testing.B) {
	labtest.RequireDocker(b)
	n, rounds := envInt(b, "BENCH_PODS", 20), envInt(b, "BENCH_ROUNDS", 3)
	settle := 10 * time.Second
	if v := os.Getenv("BENCH_SETTLE"); v != "" {
		var err error
		if settle, err = time.ParseDuration(v); err != nil {
			b.Fatalf("BENCH_SETTLE: %v", err)
		}
	}
	env := testEnv(b, map[string]any{"pods": n + 10})
	be, err := NewBackend(context.Background(), env)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conformance.DeleteAll(b, be, time.Second)
		be.Close()
	})
	var shimDir string
	if os.Getenv("BENCH_RAW_SHIM") != "" {
		shimDir = b.TempDir()
	}
	var createRatios, deleteRatios []float64
	for range b.N {
		// Raw and backend rounds alternate, so that a change of the machine's load meets both alike.
		for round := range rounds {
			// Each half starts once the engine (and the kernel: a removed network namespace is torn down
			// after its container is gone, under the lock that making a new one needs) settled after the last.
			time.Sleep(settle)
			rawCreate, rawDelete := rawPods(b, be, env.Instance+"-raw", n, shimDir)
			time.Sleep(settle)
			created, deleted, answered, perCreate, perDelete := backendPods(b, be, fmt.Sprintf("r%d-", round), n)
			rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
			fmt.Printf("\n%d pods, concurrency 8: create %.2f pods/s (raw %.2f, ratio %.2f; Create answered all in %s), delete %.2f pods/s (raw %.2f, ratio %.2f)\n",
				n, rate(created), rate(rawCreate), rawCreate.Seconds()/created.Seconds(), answered.Round(time.Millisecond),
				rate(deleted), rate(rawDelete), rawDelete.Seconds()/deleted.Seconds())
			fmt.Printf("  engine calls per pod, create: %s\n", perCreate)
			fmt.Printf("  engine calls per pod, delete: %s\n", perDelete)
			createRatios = append(createRatios, rawCreate.Seconds()/created.Seconds())
			deleteRatios = append(deleteRatios, rawDelete.Seconds()/deleted.Seconds())
		}
	}
	b.ReportMetric(median(createRatios), "create-ratio")
	b.ReportMetric(median(deleteRatios), "delete-ratio")
}

func envInt(b *testing.B, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s: %q is not a positive number", key, v)
	}
	return n
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// backendPods creates n pods through the backend, 8 at once, waits until Status says they all run, then
// deletes them (grace 1 s), 8 at once.
func backendPods(b *testing.B, be *Backend, prefix string, n int) (created, deleted, answered time.Duration, perCreate, perDelete string) {
	pods := make([]*v1.Pod, n)
	for i := range pods {
		pods[i] = conformance.NewPod(fmt.Sprintf("%sbench%d", prefix, i), conformance.ShellContainer("main", "sleep 3600"))
		pods[i].Spec.Containers[0].Image = labtest.BusyboxImage
	}
	ctx := context.Background()
	m0 := engineOps(be)
	start := time.Now()
	eachAtOnce(b, n, func(i int) error {
		_, err := be.Create(ctx, conformance.NewCreateRequest(pods[i], conformance.Objects{}))
		return err
	})
	answered = time.Since(start)
	for {
		sts, err := be.Status(ctx, pods)
		if err != nil {
			b.Fatal(err)
		}
		running := 0
		for _, st := range sts {
			if len(st.Containers) == 1 && st.Containers[0].State.Running != nil {
				running++
			}
		}
		if running == n {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	created = time.Since(start)
	m1 := engineOps(be)
	start = time.Now()
	eachAtOnce(b, n, func(i int) error {
		return be.Delete(ctx, backend.DeleteRequest{Pod: pods[i], GracePeriod: time.Second})
	})
	deleted = time.Since(start)
	m2 := engineOps(be)
	return created, deleted, answered, m1.minus(m0).per(n), m2.minus(m1).per(n)
}

// opStats are the backend's engine calls so far: count and total seconds by call.
type opStats map[string][2]float64

func engineOps(b *Backend) opStats {
	out := opStats{}
	mfs, _ := b.metrics.gather()
	for _, mf := range mfs {
		if mf.GetName() != "interlink_backend_docker_engine_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "call" {
					out[l.GetValue()] = [2]float64{float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()}
				}
			}
		}
	}
	for op, c := range callsByOp(b) {
		if _, timed := out[op]; !timed {
			out[op] = [2]float64{c, 0}
		}
	}
	return out
}

func callsByOp(b *Backend) map[string]float64 {
	out := map[string]float64{}
	mfs, _ := b.metrics.gather()
	for _, mf := range mfs {
		if mf.GetName() != "interlink_backend_engine_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func (s opStats) minus(o opStats) opStats {
	out := opStats{}
	for k, v := range s {
		out[k] = [2]float64{v[0] - o[k][0], v[1] - o[k][1]}
	}
	return out
}

func (s opStats) per(n int) string {
	var keys []string
	for k, v := range s {
		if v[0] > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		v := s[k]
		p := fmt.Sprintf("%s %.2f", k, v[0]/float64(n))
		if v[1] > 0 {
			p += fmt.Sprintf(" (mean %.0fms)", v[1]/v[0]*1000)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// eachAtOnce calls f(i) for i in [0, n), 8 at once, and fails the benchmark on any error.
func eachAtOnce(b *testing.B, n int, f func(i int) error) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	var errs []error
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		b.Fatalf("%d of %d failed, the first: %v", len(errs), n, errs[0])
	}
}

// rawPods makes n pods' containers with the engine alone (a sandbox, then a container in its namespaces,
// each created and started), then stops (grace 1 s) and removes them, 8 pods at once; it returns how long
// each half took.
func rawPods(b *testing.B, be *Backend, instance string, n int, shimDir string) (create, remove time.Duration) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	labels := map[string]string{pod.LabelInstance: instance}
	cmd := []string{"sh", "-c", "sleep 3600"}
	sandbox, main := make([]string, n), make([]string, n)
	start := time.Now()
	eachAtOnce(b, n, func(i int) error {
		s, err := cli.ContainerCreate(ctx, &container.Config{Image: labtest.BusyboxImage, Cmd: cmd, Labels: labels},
			&container.HostConfig{IpcMode: "shareable"}, nil, nil, "")
		if err != nil {
			return err
		}
		sandbox[i] = s.ID
		if err := cli.ContainerStart(ctx, s.ID, container.StartOptions{}); err != nil {
			return err
		}
		// Under an init (docker-init) as the backend's container is under the shim: the command is not PID 1,
		// so the stop's SIGTERM ends it as it does the backend's, not the one-second timeout.
		withInit := true
		cfg := &container.Config{Image: labtest.BusyboxImage, Cmd: cmd, Labels: labels}
		hc := &container.HostConfig{NetworkMode: container.NetworkMode("container:" + s.ID), IpcMode: container.IpcMode("container:" + s.ID),
			Init: &withInit}
		if shimDir != "" { // the main container under the shim, as the backend runs it
			hc.Init = nil
			dir := filepath.Join(shimDir, strconv.Itoa(i)+"-"+s.ID[:8])
			if err := shim.WriteSpec(dir, shim.Spec{Argv: cmd}); err != nil {
				return err
			}
			cfg.Cmd, cfg.Entrypoint = nil, shim.Entrypoint()
			hc.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: be.shimPath, Target: shim.BinaryPath, ReadOnly: true},
				{Type: mount.TypeBind, Source: dir, Target: shim.StateDir}}
		}
		c, err := cli.ContainerCreate(ctx, cfg, hc, nil, nil, "")
		if err != nil {
			return err
		}
		main[i] = c.ID
		return cli.ContainerStart(ctx, c.ID, container.StartOptions{})
	})
	create = time.Since(start)
	start = time.Now()
	eachAtOnce(b, n, func(i int) error {
		one := 1
		if err := cli.ContainerStop(ctx, main[i], container.StopOptions{Timeout: &one}); err != nil {
			return err
		}
		if err := cli.ContainerRemove(ctx, main[i], container.RemoveOptions{Force: true}); err != nil {
			return err
		}
		return cli.ContainerRemove(ctx, sandbox[i], container.RemoveOptions{Force: true})
	})
	return create, time.Since(start)
}
