package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/adminapi"
)

var describeOpts struct{ podRef }

func init() {
	commands["describe"] = &command{run: runDescribe, flags: func(fs *pflag.FlagSet) { describeOpts.podRef.flags(fs) }}
	commands["backends"] = &command{run: runBackends, flags: func(fs *pflag.FlagSet) {
		fs.StringVarP(&backendsOpts.output, "output", "o", "", "wide, json or yaml")
	}}
	commands["ping"] = &command{run: runPing}
}

func runDescribe(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
	o := describeOpts
	if len(args) > 0 && (args[0] == "pod" || args[0] == "pods" || args[0] == "po") {
		args = args[1:]
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	s, err := o.resolve(ctx, c, "describe", args)
	if err != nil {
		return err
	}
	d, err := c.GetPod(ctx, s.UID)
	if err != nil {
		return err
	}
	e.describe(e.stdout, d)
	return nil
}

// describe prints a pod as kubectl describe does: its identity, where it runs, and every container's state.
func (e *env) describe(w io.Writer, d adminapi.PodDetail) {
	p := d.Pod
	field := func(k, v string) { fmt.Fprintf(w, "%-14s%s\n", k+":", v) }
	field("Name", p.Name)
	field("Namespace", p.Namespace)
	field("UID", p.UID)
	field("Backend", dash(p.Backend))
	field("Remote ID", dash(p.RemoteID))
	field("Created", stamp(p.Created))
	field("Phase", e.phase(podPhase(p)))
	field("Status time", stampOf(p.StatusTime))
	field("Ready", fmt.Sprintf("%d/%d", p.Ready, p.Containers))
	field("Restarts", strconv.Itoa(p.Restarts))
	inits, mains := d.Status.InitContainers, d.Status.Containers
	section := func(title string, init bool, live []v1.ContainerStatus) {
		printed := false
		for _, cd := range p.ContainersDetail {
			if cd.Init != init {
				continue
			}
			if !printed {
				fmt.Fprintf(w, "%s:\n", title)
				printed = true
			}
			e.describeContainer(w, cd, find(live, cd.Name))
		}
		// Containers the backend reports that the summary has not listed yet.
		for i := range live {
			if !hasDetail(p.ContainersDetail, live[i].Name, init) {
				if !printed {
					fmt.Fprintf(w, "%s:\n", title)
					printed = true
				}
				e.describeContainer(w, adminapi.ContainerSummary{Name: live[i].Name, Init: init}, &live[i])
			}
		}
	}
	section("Init Containers", true, inits)
	section("Containers", false, mains)
}

func hasDetail(ds []adminapi.ContainerSummary, name string, init bool) bool {
	for _, d := range ds {
		if d.Name == name && d.Init == init {
			return true
		}
	}
	return false
}

func find(sts []v1.ContainerStatus, name string) *v1.ContainerStatus {
	for i := range sts {
		if sts[i].Name == name {
			return &sts[i]
		}
	}
	return nil
}

// describeContainer prints one container: from the backend's status asked now when there is one, else
// from the dispatcher's last known summary.
func (e *env) describeContainer(w io.Writer, cd adminapi.ContainerSummary, live *v1.ContainerStatus) {
	fmt.Fprintf(w, "  %s:\n", cd.Name)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "    %-16s%s\n", k+":", v)
		}
	}
	if live == nil {
		line("State", e.phase(capitalised(cd.State)))
		line("Reason", cd.Reason)
		line("Message", cd.Message)
		if cd.ExitCode != nil {
			line("Exit Code", strconv.Itoa(int(*cd.ExitCode)))
		}
		line("Ready", strconv.FormatBool(cd.Ready))
		line("Restart Count", strconv.Itoa(int(cd.Restarts)))
		return
	}
	line("Image", live.Image)
	line("Container ID", live.ContainerID)
	state := func(prefix string, s v1.ContainerState) {
		switch {
		case s.Waiting != nil:
			line(prefix, e.phase("Waiting"))
			line("  Reason", s.Waiting.Reason)
			line("  Message", s.Waiting.Message)
		case s.Running != nil:
			line(prefix, e.phase("Running"))
			line("  Started", stamp(s.Running.StartedAt.Time))
		case s.Terminated != nil:
			line(prefix, "Terminated")
			line("  Reason", s.Terminated.Reason)
			line("  Message", s.Terminated.Message)
			line("  Exit Code", strconv.Itoa(int(s.Terminated.ExitCode)))
			if s.Terminated.Signal != 0 {
				line("  Signal", strconv.Itoa(int(s.Terminated.Signal)))
			}
			line("  Started", stamp(s.Terminated.StartedAt.Time))
			line("  Finished", stamp(s.Terminated.FinishedAt.Time))
		default:
			if prefix == "State" {
				line(prefix, "(none reported)")
			}
		}
	}
	state("State", live.State)
	state("Last State", live.LastTerminationState)
	line("Ready", strconv.FormatBool(live.Ready))
	line("Restart Count", strconv.Itoa(int(live.RestartCount)))
}

// stampOf is stamp of *t, "-" when nil.
func stampOf(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return stamp(*t)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339) + " (" + since(t, now()) + " ago)"
}

var backendsOpts struct{ output string }

func runBackends(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
	o := backendsOpts
	if len(args) > 0 {
		return usagef("backends takes no argument, not %q", args[0])
	}
	if err := checkOutput(o.output, "wide", "json", "yaml"); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	bs, err := c.Backends(ctx)
	if err != nil {
		return err
	}
	if o.output == "json" || o.output == "yaml" {
		if bs == nil {
			bs = []adminapi.Backend{}
		}
		return printAs(e.stdout, o.output, map[string]any{"backends": bs})
	}
	t := &table{e: e, colour: map[int]func(string) string{1: e.phase}}
	head := []string{"NAME", "STATE", "PODS", "RESTARTS", "CPU", "MEMORY", "MAX-PODS", "GPUS", "VERSION", "REASON"}
	if o.output == "wide" {
		head = append(head[:len(head)-1], "ENGINE", "REASON")
	}
	t.add(head...)
	for _, b := range bs {
		capacity := adminapi.Capacity{}
		if b.Capacity != nil {
			capacity = *b.Capacity
		}
		row := []string{b.Name, b.State, strconv.Itoa(b.Pods), strconv.Itoa(b.Restarts), dash(capacity.CPU),
			dash(capacity.Memory), dash(capacity.Pods), dash(capacity.GPUs), dash(b.Version)}
		if o.output == "wide" {
			row = append(row, dash(b.Engine))
		}
		t.add(append(row, dash(b.Reason))...)
	}
	t.write(e.stdout)
	return nil
}

// runPing asks what interLink asks every 30 s: GET /status with an empty list.
func runPing(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
	if len(args) > 0 {
		return usagef("ping takes no argument, not %q", args[0])
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	start := time.Now()
	pr, err := c.Ping(ctx)
	if err != nil {
		return fmt.Errorf("the dispatcher at %s fails interLink's ping: %w", c.Server(), err)
	}
	took := time.Since(start).Round(time.Millisecond)
	if pr == nil {
		fmt.Fprintf(e.stdout, "the dispatcher at %s answers interLink's ping (in %s)\n", c.Server(), took)
		return nil
	}
	status := pr.Status
	if status == "" {
		status = "ok"
	}
	fmt.Fprintf(e.stdout, "the dispatcher at %s answers interLink's ping: %s (in %s)\n", c.Server(), e.paint(map[bool]string{true: green, false: yellow}[status == "ok"], status), took)
	if r := pr.Resources; r != nil {
		var parts []string
		for _, kv := range [][2]string{{"cpu", r.CPU}, {"memory", r.Memory}, {"pods", r.Pods}} {
			if kv[1] != "" {
				parts = append(parts, kv[0]+" "+kv[1])
			}
		}
		for _, a := range r.Accelerators {
			parts = append(parts, a.ResourceType+" "+a.Available)
		}
		if len(parts) > 0 {
			fmt.Fprintf(e.stdout, "capacity: %s\n", strings.Join(parts, ", "))
		}
	}
	for _, t := range pr.Taints {
		fmt.Fprintf(e.stdout, "taint: %s=%s:%s\n", t.Key, t.Value, t.Effect)
	}
	return nil
}

func capitalised(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
