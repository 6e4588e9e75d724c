package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher/client"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

var applyOpts struct {
	files             []string
	backend           string
	namespace         string
	routingAnnotation string
	wait              bool
	timeout           time.Duration
	interval          time.Duration
	dryRun            bool
}

func init() {
	commands["apply"] = &command{run: runApply, flags: func(fs *pflag.FlagSet) {
		fs.StringArrayVarP(&applyOpts.files, "filename", "f", nil, "a manifest file, - for stdin (repeatable)")
		fs.StringVar(&applyOpts.backend, "backend", "", "run the pods on this backend (sets the routing annotation)")
		fs.StringVarP(&applyOpts.namespace, "namespace", "n", "", "the namespace of pods that name none")
		fs.StringVar(&applyOpts.routingAnnotation, "routing-annotation", client.DefaultRoutingAnnotation, "the dispatcher's routing.annotation")
		fs.BoolVar(&applyOpts.wait, "wait", false, "show progress until the pods end (or, restartPolicy Always, run ready)")
		fs.DurationVar(&applyOpts.timeout, "timeout", 10*time.Minute, "how long --wait waits (0: for ever)")
		fs.DurationVar(&applyOpts.interval, "poll-interval", time.Second, "how often --wait asks for status")
		fs.BoolVar(&applyOpts.dryRun, "dry-run", false, "print the create requests as JSON instead of sending them")
	}}
}

func runApply(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
	o := applyOpts
	if len(args) > 0 {
		return usagef("apply takes its manifests with -f, not %q", args[0])
	}
	if len(o.files) == 0 {
		return usagef("apply needs -f FILE (or -f - for stdin)")
	}
	var m client.Manifests
	for _, f := range o.files {
		if err := readManifest(e, &m, f); err != nil {
			return err
		}
	}
	if len(m.Pods) == 0 {
		return usagef("%s: no document is a Pod; dispatcherctl runs pods (ConfigMaps and Secrets only serve them)", strings.Join(o.files, ", "))
	}
	// Every pod is built before any is sent: a bad manifest sends nothing.
	var reqs []*interlink.RetrievedPodData
	for _, p := range m.Pods {
		data, err := m.Build(p, client.BuildOptions{Namespace: o.namespace, RoutingAnnotation: o.routingAnnotation,
			Backend: o.backend, Warn: func(s string) { fmt.Fprintf(e.stderr, "%s: %s\n", e.paint(yellow, "warning"), s) }})
		if err != nil {
			return &usageError{err.Error()}
		}
		reqs = append(reqs, data)
	}
	if o.dryRun {
		for _, r := range reqs {
			if err := printAs(e.stdout, "json", r); err != nil {
				return err
			}
		}
		return nil
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var created []*v1.Pod
	var failed []error
	for _, r := range reqs {
		p := &r.Pod
		// The dispatcher keys pods by UID, and apply makes a new one each time: a second apply of the same
		// manifest would run the pod twice. Refused here when the admin API can tell.
		if s, err := c.FindPod(ctx, p.Namespace, p.Name); err == nil && s.UID != string(p.UID) {
			err := fmt.Errorf("pod %s/%s already exists (uid %s, %s on backend %s); delete it first with dispatcherctl delete %s -n %s",
				p.Namespace, p.Name, s.UID, podPhase(s), dash(s.Backend), p.Name, p.Namespace)
			failed = append(failed, err)
			fmt.Fprintf(e.stderr, "%s: %v\n", e.paint(red, "error"), err)
			continue
		}
		answer, err := c.Create(ctx, r)
		if err != nil {
			var un *client.UnreachableError
			if errors.As(err, &un) || errors.Is(err, context.Canceled) {
				return err
			}
			failed = append(failed, fmt.Errorf("the dispatcher refused pod %s/%s: %v", p.Namespace, p.Name, err))
			fmt.Fprintf(e.stderr, "%s: the dispatcher refused pod %s/%s: %v\n", e.paint(red, "error"), p.Namespace, p.Name, err)
			continue
		}
		// As the virtual kubelet does: the remote id goes on the pod, and later requests carry it.
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations["JobID"] = answer.PodJID
		where := ""
		if s, err := c.FindPod(ctx, p.Namespace, p.Name); err == nil && s.UID == string(p.UID) && s.Backend != "" {
			where = " on backend " + s.Backend
		}
		fmt.Fprintf(e.stdout, "pod/%s created%s (namespace %s, uid %s, remote id %s)\n", p.Name, where, p.Namespace, p.UID, answer.PodJID)
		created = append(created, p)
	}
	if o.wait && len(created) > 0 {
		if err := waitPods(ctx, e, c, created, o.timeout, o.interval); err != nil {
			if len(failed) > 0 {
				fmt.Fprintf(e.stderr, "%s: %v\n", e.paint(red, "error"), err)
				return &waitError{code: exitFailed}
			}
			return err
		}
	}
	if len(failed) > 0 {
		if len(failed) == 1 && len(reqs) == 1 {
			return &waitError{code: exitFailed} // already printed
		}
		return fmt.Errorf("%d of %d pods were refused", len(failed), len(reqs))
	}
	return nil
}

func readManifest(e *env, m *client.Manifests, f string) error {
	if f == "-" {
		return m.Read("-", e.stdin)
	}
	fh, err := os.Open(f)
	if err != nil {
		return usagef("cannot read the manifest: %v", err)
	}
	defer fh.Close()
	return m.Read(f, io.Reader(fh))
}

// waitPods polls the pods' status until each has ended (or, restartPolicy Always, runs ready), printing a
// line whenever what a pod waits on changes.
func waitPods(ctx context.Context, e *env, c *client.Client, pods []*v1.Pod, timeout, interval time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last := map[string]string{}
	done := map[string]v1.PodPhase{}
	for {
		sts, err := c.Status(ctx, pods)
		switch {
		case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
			return timedOut(pods, done, last, timeout)
		case errors.Is(err, context.Canceled):
			return err
		case err != nil:
			var un *client.UnreachableError
			if errors.As(err, &un) {
				return err
			}
			fmt.Fprintf(e.stderr, "%s: status: %v (retrying)\n", e.paint(yellow, "warning"), err)
		}
		byUID := map[string]interlink.PodStatus{}
		for _, st := range sts {
			byUID[st.PodUID] = st
		}
		for _, p := range pods {
			uid := string(p.UID)
			if _, ok := done[uid]; ok {
				continue
			}
			st, ok := byUID[uid]
			if !ok {
				continue
			}
			phase := pod.NextPhase(p, st)
			p.Status.Phase = phase
			line := progress(phase, st)
			if line != last[uid] {
				fmt.Fprintf(e.stdout, "pod/%s: %s\n", p.Name, e.colourLine(phase, line))
				last[uid] = line
			}
			switch {
			case phase == v1.PodSucceeded || phase == v1.PodFailed:
				done[uid] = phase
			case p.Spec.RestartPolicy == v1.RestartPolicyAlways && phase == v1.PodRunning && allReady(st):
				done[uid] = phase // a service: its outcome is that it runs
			}
		}
		if len(done) == len(pods) {
			var bad []string
			for _, p := range pods {
				if done[string(p.UID)] == v1.PodFailed {
					bad = append(bad, p.Name)
				}
			}
			if len(bad) > 0 {
				return &waitError{code: exitFailed, msg: fmt.Sprintf("pod %s failed", strings.Join(bad, ", "))}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return timedOut(pods, done, last, timeout)
			}
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

func timedOut(pods []*v1.Pod, done map[string]v1.PodPhase, last map[string]string, timeout time.Duration) error {
	var waiting []string
	for _, p := range pods {
		if _, ok := done[string(p.UID)]; !ok {
			l := last[string(p.UID)]
			if l == "" {
				l = "no status yet"
			}
			waiting = append(waiting, fmt.Sprintf("%s (%s)", p.Name, l))
		}
	}
	return &waitError{code: exitTimeout, msg: fmt.Sprintf("gave up waiting after %s (--timeout): still waiting for pod %s; the pods are left running, see dispatcherctl describe",
		timeout, strings.Join(waiting, ", "))}
}

func (e *env) colourLine(phase v1.PodPhase, line string) string {
	p := string(phase)
	if strings.HasPrefix(line, p) {
		return e.phase(p) + line[len(p):]
	}
	return line
}

func allReady(st interlink.PodStatus) bool {
	if len(st.Containers) == 0 {
		return false
	}
	for _, cs := range st.Containers {
		if cs.State.Running == nil || !cs.Ready {
			return false
		}
	}
	return true
}

// progress is one line saying where a pod is: its phase and what its containers wait on or how they ended.
func progress(phase v1.PodPhase, st interlink.PodStatus) string {
	var parts []string
	describe := func(init bool, cs v1.ContainerStatus) {
		what := "container " + cs.Name
		if init {
			what = "init container " + cs.Name
		}
		s := cs.State
		switch {
		case s.Waiting != nil:
			r := s.Waiting.Reason
			if r == "" {
				r = "waiting"
			}
			if s.Waiting.Message != "" {
				r += ": " + oneLine(s.Waiting.Message)
			}
			parts = append(parts, what+" "+r)
		case s.Terminated != nil && (phase == v1.PodSucceeded || phase == v1.PodFailed || s.Terminated.ExitCode != 0) && !init:
			t := fmt.Sprintf("%s exited %d", what, s.Terminated.ExitCode)
			if s.Terminated.Reason != "" && s.Terminated.Reason != "Completed" {
				t += " (" + s.Terminated.Reason
				if s.Terminated.Message != "" {
					t += ": " + oneLine(s.Terminated.Message)
				}
				t += ")"
			}
			parts = append(parts, t)
		case s.Terminated != nil && init && s.Terminated.ExitCode != 0:
			parts = append(parts, fmt.Sprintf("%s exited %d", what, s.Terminated.ExitCode))
		case s.Running == nil && s.Terminated == nil:
			parts = append(parts, what+" has no state yet")
		}
	}
	for _, cs := range st.InitContainers {
		describe(true, cs)
	}
	for _, cs := range st.Containers {
		describe(false, cs)
	}
	if phase == v1.PodRunning {
		ready := 0
		for _, cs := range st.Containers {
			if cs.Ready {
				ready++
			}
		}
		parts = append([]string{fmt.Sprintf("%d/%d ready", ready, len(st.Containers))}, parts...)
	}
	if len(parts) == 0 {
		return string(phase)
	}
	return string(phase) + ": " + strings.Join(parts, ", ")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
