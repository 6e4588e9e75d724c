package shim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
)

// timing is a probe's schedule and thresholds with Kubernetes' defaults filled in.
type timing struct {
	initialDelay, period, timeout time.Duration
	successThreshold              int32
	failureThreshold              int32
}

func probeTiming(p *v1.Probe) timing {
	orDefault := func(v, def int32) int32 {
		if v <= 0 {
			return def
		}
		return v
	}
	return timing{
		initialDelay:     time.Duration(max(p.InitialDelaySeconds, 0)) * time.Second,
		period:           time.Duration(orDefault(p.PeriodSeconds, 10)) * time.Second,
		timeout:          time.Duration(orDefault(p.TimeoutSeconds, 1)) * time.Second,
		successThreshold: orDefault(p.SuccessThreshold, 1),
		failureThreshold: orDefault(p.FailureThreshold, 3),
	}
}

// firstProbeAt is when a probe first runs: initialDelaySeconds after the command started, but not before
// the startup probe has let it run (gateOpened; zero when there is no gate). The kubelet waits for its
// next period tick instead; probing as soon as allowed only makes a container ready sooner.
func firstProbeAt(started, gateOpened time.Time, t timing) time.Time {
	first := started.Add(t.initialDelay)
	if gateOpened.After(first) {
		return gateOpened
	}
	return first
}

// verdict counts consecutive results against a probe's thresholds, as the kubelet's probe worker does: a
// result changes the probe's state only once it has come successThreshold (or failureThreshold) times in a
// row.
type verdict struct {
	t    timing
	seen bool
	last bool
	run  int32
}

// observe records one result and tells whether it settles the probe's state to that result.
func (v *verdict) observe(ok bool) bool {
	if v.seen && v.last == ok {
		v.run++
	} else {
		v.seen, v.last, v.run = true, ok, 1
	}
	if ok {
		return v.run >= v.t.successThreshold
	}
	return v.run >= v.t.failureThreshold
}

// probe runs a probe's action once, bounded by its timeout. An error of the action itself (a connection
// refused, a command missing) is a failure, as in Kubernetes.
func (r *runner) probe(ctx context.Context, p *v1.Probe, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.Exec != nil:
		code, out, err := r.exec(ctx, p.Exec.Command, nil, nil)
		if err != nil {
			return false, err.Error()
		}
		if code != 0 {
			if out = strings.TrimSpace(out); out != "" {
				return false, out
			}
			return false, fmt.Sprintf("command %q exited with code %d", strings.Join(p.Exec.Command, " "), code)
		}
		return true, ""
	case p.HTTPGet != nil:
		return r.httpGet(ctx, p.HTTPGet)
	case p.TCPSocket != nil:
		return r.tcpSocket(ctx, p.TCPSocket)
	case p.GRPC != nil:
		return r.grpcCheck(ctx, p.GRPC)
	}
	return false, "the probe has no action the shim can run"
}

// probes runs the container's probes from the moment its command started until ctx ends.
type probes struct {
	run     *runner
	state   *stateWriter
	started time.Time
	// kill asks the supervisor to stop the container for a failed liveness or startup probe; grace is the
	// probe's own terminationGracePeriodSeconds, or nil.
	kill func(message string, grace *int64)
	wg   sync.WaitGroup
}

// start launches one worker per probe. The startup probe, while it has not succeeded, holds the others back.
func (ps *probes) start(ctx context.Context, startup, liveness, readiness *v1.Probe) {
	var gate chan struct{}
	if startup != nil {
		gate = make(chan struct{})
		ps.spawn(ctx, startup, nil, func(ok bool, msg string) bool {
			if ok {
				close(gate)
				ps.state.startupSucceeded()
				if readiness == nil {
					ps.state.ready(true) // started, and no readiness probe to say otherwise
				}
			} else {
				ps.kill("Startup probe failed: "+msg, startup.TerminationGracePeriodSeconds)
			}
			return false
		})
	}
	if liveness != nil {
		ps.spawn(ctx, liveness, gate, func(ok bool, msg string) bool {
			if ok {
				return true
			}
			ps.kill("Liveness probe failed: "+msg, liveness.TerminationGracePeriodSeconds)
			return false
		})
	}
	if readiness != nil {
		ready := false // as the supervisor wrote it before the start
		ps.spawn(ctx, readiness, gate, func(ok bool, _ string) bool {
			if ok != ready {
				ready = ok
				ps.state.ready(ok)
			}
			return true
		})
	}
}

// spawn runs probe p on its schedule; settled is called whenever the results reach a threshold and tells
// whether to go on probing.
func (ps *probes) spawn(ctx context.Context, p *v1.Probe, gate <-chan struct{}, settled func(ok bool, msg string) bool) {
	t := probeTiming(p)
	ps.wg.Add(1)
	go func() {
		defer ps.wg.Done()
		var gateOpened time.Time
		if gate != nil {
			select {
			case <-gate:
				gateOpened = time.Now()
			case <-ctx.Done():
				return
			}
		}
		timer := time.NewTimer(time.Until(firstProbeAt(ps.started, gateOpened, t)))
		defer timer.Stop()
		v := verdict{t: t}
		for {
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
			begin := time.Now()
			ok, msg := ps.run.probe(ctx, p, t.timeout)
			if ctx.Err() != nil {
				return
			}
			if v.observe(ok) && !settled(ok, msg) {
				return
			}
			timer.Reset(time.Until(begin.Add(t.period)))
		}
	}()
}

// wait waits for every worker to have stopped (after ctx ended), so that no state is written after it.
func (ps *probes) wait() { ps.wg.Wait() }
