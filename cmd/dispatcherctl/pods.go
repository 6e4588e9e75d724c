package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/adminapi"
	"github.com/interlink-hq/interlink-dispatcher/dispatcher/client"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// podRef is how logs, delete and describe name a pod: NAME (with -n), or --uid.
type podRef struct{ namespace, uid string }

func (r *podRef) flags(fs *pflag.FlagSet) {
	fs.StringVarP(&r.namespace, "namespace", "n", "", "the pod's namespace (needed only when its name is in several)")
	fs.StringVar(&r.uid, "uid", "", "the pod's UID: no lookup in the admin API")
}

// resolve finds the pod called args[0]. With --uid, the name and namespace are taken as given.
func (r *podRef) resolve(ctx context.Context, c *client.Client, cmd string, args []string) (adminapi.PodSummary, error) {
	if len(args) != 1 {
		if len(args) == 0 && r.uid == "" {
			return adminapi.PodSummary{}, usagef("%s needs the pod's name", cmd)
		}
		if len(args) > 1 {
			return adminapi.PodSummary{}, usagef("%s takes one pod name, not %s", cmd, strings.Join(args, " "))
		}
	}
	name := ""
	if len(args) == 1 {
		name = args[0]
	}
	if r.uid != "" {
		// The list first: it asks no backend, as logs and delete need only the pod's identity.
		if name != "" {
			pods, err := c.ListPods(ctx, client.PodFilter{Namespace: r.namespace, Name: name})
			for _, p := range pods {
				if err == nil && p.UID == r.uid {
					return p, nil
				}
			}
		}
		s, err := c.GetPod(ctx, r.uid)
		if err == nil {
			return s.Pod, nil
		}
		var na *client.NoAdminAPIError
		if !errors.As(err, &na) {
			return adminapi.PodSummary{}, err
		}
		if name == "" {
			return adminapi.PodSummary{}, usagef("%s: this dispatcher has no admin API to look the UID up in; give the pod's name too", cmd)
		}
		ns := r.namespace
		if ns == "" {
			ns = "default"
		}
		return adminapi.PodSummary{UID: r.uid, Name: name, Namespace: ns}, nil
	}
	return c.FindPod(ctx, r.namespace, name)
}

var logsOpts struct {
	podRef
	container                         string
	follow, timestamps, previous, all bool
	tail                              int
	limitBytes                        int
	since                             time.Duration
	sinceTime                         string
}

func init() {
	commands["logs"] = &command{run: runLogs, flags: func(fs *pflag.FlagSet) {
		logsOpts.podRef.flags(fs)
		fs.StringVarP(&logsOpts.container, "container", "c", "", "the container (needed when the pod has several)")
		fs.BoolVarP(&logsOpts.follow, "follow", "f", false, "keep printing new lines until the container ends")
		fs.IntVar(&logsOpts.tail, "tail", -1, "only the last N lines (-1: all)")
		fs.IntVar(&logsOpts.limitBytes, "limit-bytes", 0, "at most this many bytes (0: no limit)")
		fs.DurationVar(&logsOpts.since, "since", 0, "only lines newer than this, e.g. 5m")
		fs.StringVar(&logsOpts.sinceTime, "since-time", "", "only lines after this RFC 3339 time")
		fs.BoolVar(&logsOpts.timestamps, "timestamps", false, "prefix each line with its time")
		fs.BoolVarP(&logsOpts.previous, "previous", "p", false, "the log of the container's previous run")
	}}
}

func runLogs(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
	o := logsOpts
	opts := interlink.LogOpts{Timestamps: o.timestamps, Follow: o.follow, Previous: o.previous, LimitBytes: o.limitBytes}
	switch {
	case o.tail >= 0 && o.limitBytes > 0:
		return usagef("--tail and --limit-bytes cannot be given together")
	case o.since > 0 && o.sinceTime != "":
		return usagef("--since and --since-time cannot be given together")
	case o.since < 0:
		return usagef("--since is a positive duration such as 5m")
	}
	if o.tail >= 0 {
		opts.Tail = o.tail
		if o.tail == 0 {
			return nil // kubectl prints nothing for --tail 0
		}
	}
	if o.since > 0 {
		opts.SinceSeconds = int(max(1, o.since.Round(time.Second)/time.Second))
	}
	if o.sinceTime != "" {
		t, err := time.Parse(time.RFC3339, o.sinceTime)
		if err != nil {
			return usagef("--since-time is an RFC 3339 time such as 2026-12-01T10:00:00Z, not %q", o.sinceTime)
		}
		opts.SinceTime = t
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	p, err := o.resolve(ctx, c, "logs", args)
	if err != nil {
		return err
	}
	name := o.container
	if name == "" {
		var names []string
		for _, d := range p.ContainersDetail {
			if !d.Init {
				names = append(names, d.Name)
			}
		}
		switch {
		case len(names) == 1:
			name = names[0]
		case len(names) > 1:
			return usagef("pod %s has several containers (%s); choose one with -c", p.Name, strings.Join(names, ", "))
		default:
			return usagef("the containers of pod %s are not known yet; name one with -c", p.Name)
		}
	}
	// stdout is unbuffered: a followed log reaches a pipe or a terminal chunk by chunk, as the dispatcher sends it.
	return c.Logs(ctx, interlink.LogStruct{Namespace: p.Namespace, PodUID: p.UID, PodName: p.Name, ContainerName: name, Opts: opts}, e.stdout)
}

var deleteOpts struct {
	podRef
	grace int64
}

func init() {
	commands["delete"] = &command{run: runDelete, flags: func(fs *pflag.FlagSet) {
		deleteOpts.podRef.flags(fs)
		fs.Int64Var(&deleteOpts.grace, "grace-period", -1, "seconds the pod's processes get between SIGTERM and SIGKILL (-1: the pod's own; 0: at once)")
	}}
}

func runDelete(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
	o := deleteOpts
	if len(args) > 0 && (args[0] == "pod" || args[0] == "pods" || args[0] == "po") {
		args = args[1:]
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	s, err := o.resolve(ctx, c, "delete", args)
	if err != nil {
		return err
	}
	// The pod as a delete body: the identity, the remote id as the virtual kubelet keeps it, the grace period.
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(s.UID), Namespace: s.Namespace, Name: s.Name}}
	if s.RemoteID != "" {
		p.Annotations = map[string]string{"JobID": s.RemoteID}
	}
	if o.grace >= 0 {
		g := o.grace
		if g == 0 {
			g = 1 // as kubectl: 0 means "immediately", which Kubernetes sends as 1
		}
		p.DeletionGracePeriodSeconds = &g
	}
	msg, err := c.Delete(ctx, p)
	if err != nil {
		return fmt.Errorf("the dispatcher could not delete pod %s/%s: %v", s.Namespace, s.Name, err)
	}
	fmt.Fprintln(e.stdout, strings.TrimSpace(msg))
	return nil
}
