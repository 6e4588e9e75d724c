package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/adminapi"
	"github.com/interlink-hq/interlink-dispatcher/dispatcher/client"
)

var getOpts struct {
	namespace, backend, phase, output string
	watch                             bool
	interval                          time.Duration
}

func init() {
	commands["get"] = &command{run: runGet, flags: func(fs *pflag.FlagSet) {
		fs.StringVarP(&getOpts.namespace, "namespace", "n", "", "only this namespace (default: every namespace)")
		fs.StringVar(&getOpts.backend, "backend", "", "only the pods of this backend")
		fs.StringVar(&getOpts.phase, "phase", "", "only the pods in this phase (Pending, Running, Succeeded, Failed, Unknown)")
		fs.StringVarP(&getOpts.output, "output", "o", "", "wide, json or yaml")
		fs.BoolVarP(&getOpts.watch, "watch", "w", false, "after the list, print a pod's line again whenever it changes")
		fs.DurationVar(&getOpts.interval, "poll-interval", time.Second, "how often -w asks the dispatcher")
	}}
}

// now is the clock of ages; tests set it.
var now = time.Now

func runGet(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
	o := getOpts
	if len(args) > 0 && (args[0] == "pods" || args[0] == "pod" || args[0] == "po") {
		args = args[1:]
	}
	if len(args) > 1 {
		return usagef("get takes at most one pod name, not %s", strings.Join(args, " "))
	}
	if err := checkOutput(o.output, "wide", "json", "yaml"); err != nil {
		return err
	}
	name := ""
	if len(args) == 1 {
		name = args[0]
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	f := client.PodFilter{Backend: o.backend, Namespace: o.namespace, Name: name, Phase: v1.PodPhase(o.phase)}
	pods, err := c.ListPods(ctx, f)
	if err != nil {
		return err
	}
	if name != "" && len(pods) == 0 && !o.watch {
		_, err := c.FindPod(ctx, o.namespace, name)
		return err
	}
	var t *table
	switch {
	case o.output == "json" || o.output == "yaml":
		if name != "" && len(pods) == 1 {
			err = printAs(e.stdout, o.output, pods[0])
		} else {
			err = printAs(e.stdout, o.output, map[string]any{"pods": nonNil(pods)})
		}
	case len(pods) == 0 && !o.watch:
		fmt.Fprintln(e.stderr, "No pods found.")
	default:
		t = e.podTable(o.output == "wide")
		for _, p := range pods {
			t.add(podRow(p, o.output == "wide")...)
		}
		t.write(e.stdout)
	}
	if err != nil || !o.watch {
		return err
	}
	return watchPods(ctx, e, c, f, pods, t, o.output, o.interval)
}

func nonNil(p []adminapi.PodSummary) []adminapi.PodSummary {
	if p == nil {
		return []adminapi.PodSummary{}
	}
	return p
}

func (e *env) podTable(wide bool) *table {
	t := &table{e: e, colour: map[int]func(string) string{3: e.phase}}
	head := []string{"NAME", "NAMESPACE", "BACKEND", "PHASE", "READY", "RESTARTS", "AGE"}
	if wide {
		head = append(head, "UID", "REMOTE-ID", "REASON")
	}
	t.add(head...)
	return t
}

func podPhase(p adminapi.PodSummary) string {
	if p.Phase == "" {
		return "Pending" // no status yet: what Kubernetes would show
	}
	return string(p.Phase)
}

func podRow(p adminapi.PodSummary, wide bool) []string {
	row := []string{p.Name, p.Namespace, dash(p.Backend), podPhase(p), fmt.Sprintf("%d/%d", p.Ready, p.Containers),
		strconv.Itoa(p.Restarts), since(p.Created, now())}
	if wide {
		row = append(row, p.UID, dash(p.RemoteID), dash(reason(p)))
	}
	return row
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// reason is the first reason a container gives: what a pod waits on, or how it ended.
func reason(p adminapi.PodSummary) string {
	for _, d := range p.ContainersDetail {
		if d.State == "waiting" && d.Reason != "" {
			return d.Reason
		}
	}
	for _, d := range p.ContainersDetail {
		if d.State == "terminated" && d.ExitCode != nil && *d.ExitCode != 0 {
			r := d.Reason
			if r == "" {
				r = "Error"
			}
			return fmt.Sprintf("%s (exit %d)", r, *d.ExitCode)
		}
	}
	return ""
}

// watchPods polls the list and prints a pod's row whenever it changes (the age aside), and a row with
// phase Deleted when a pod leaves the list, as kubectl get -w does.
func watchPods(ctx context.Context, e *env, c *client.Client, f client.PodFilter, pods []adminapi.PodSummary, t *table, output string, interval time.Duration) error {
	wide := output == "wide"
	key := func(p adminapi.PodSummary) string {
		r := podRow(p, true)
		r[6] = "" // the age changes by itself
		return strings.Join(r, "\x00")
	}
	seen := map[string]adminapi.PodSummary{}
	for _, p := range pods {
		seen[p.UID] = p
	}
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil // interrupted: the normal end of a watch
			}
			return ctx.Err()
		case <-time.After(interval):
		}
		next, err := c.ListPods(ctx, f)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var un *client.UnreachableError
			if errors.As(err, &un) {
				fmt.Fprintf(e.stderr, "%s: %v (retrying)\n", e.paint(yellow, "warning"), err)
				continue
			}
			return err
		}
		now := map[string]bool{}
		var changed []adminapi.PodSummary
		for _, p := range next {
			now[p.UID] = true
			old, ok := seen[p.UID]
			if !ok || key(old) != key(p) {
				changed = append(changed, p)
			}
			seen[p.UID] = p
		}
		for uid, p := range seen {
			if !now[uid] {
				p.Phase = "Deleted"
				changed = append(changed, p)
				delete(seen, uid)
			}
		}
		sort.Slice(changed, func(i, j int) bool {
			a, b := changed[i], changed[j]
			return a.Namespace < b.Namespace || (a.Namespace == b.Namespace && a.Name < b.Name)
		})
		for _, p := range changed {
			switch output {
			case "json":
				raw, _ := json.Marshal(p)
				fmt.Fprintln(e.stdout, string(raw))
			case "yaml":
				fmt.Fprintln(e.stdout, "---")
				printAs(e.stdout, "yaml", p)
			default:
				if t == nil {
					t = e.podTable(wide)
					t.write(e.stdout)
				}
				fmt.Fprintln(e.stdout, t.line(podRow(p, wide), true))
			}
		}
	}
}
