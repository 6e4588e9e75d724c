// Package shim is the container-side half of probes and lifecycle hooks: a small static program (built from
// cmd/interlink-shim) that every backend runs as the entrypoint of each container, so that startup, liveness
// and readiness probes and postStart/preStop hooks behave the same on Docker, Podman and SLURM without each
// backend implementing them. It runs inside the container, in the container's file system, environment and
// network namespace, as its PID 1.
//
// # Contract with the backends
//
// Before starting a container the backend:
//   - builds a Spec: Argv from ResolveArgv (command/args after $(VAR) expansion, and the image's
//     ENTRYPOINT/CMD), the container's ports, lifecycle, probes and the pod's terminationGracePeriodSeconds,
//     and PreStopOnExit (true to pass the interLink test set, which expects preStop's output after a natural
//     exit);
//   - calls WriteSpec(hostDir, spec) with hostDir = <pod dir>/shim/<container name>; it validates the spec
//     (a backend can call Spec.Validate earlier to refuse a pod), creates the directory writable by any
//     user, clears the state of a previous run and, with a readiness or startup probe (Spec.GatesReadiness),
//     marks the container not ready;
//   - bind-mounts the shim binary read-only at BinaryPath (/.interlink/shim) and hostDir read-write at
//     StateDir (/.interlink/state), sets the entrypoint to Entrypoint() and no cmd, keeps the engine's own
//     stop signal SIGTERM (the shim sends the container's lifecycle.stopSignal to the command itself) and
//     stops the container with a timeout a little above the grace period (the shim enforces the period).
//     Before a stop whose grace period is not the pod's (a delete's, which kubectl delete --grace-period
//     sets), it calls WriteStopGrace on the pod's shim directories; the shim then uses that period.
//
// While it runs and after it ends, the backend calls ReadState(hostDir): Ready (nil without a readiness or
// startup probe: then running means ready), StartupSucceeded, StartedAt, and once the shim has finished
// Exited, ExitCode and FinishedAt, with Reason/Message when the shim caused the end (StartError, Unhealthy,
// FailedPostStartHook). State.OnRunning puts Ready and Started on a running container's status. Files are
// written atomically: ready ("true"/"false"), startup ("true"), started (RFC 3339), exit
// ("<code> <RFC 3339 time>"), reason, message.
//
// # Behaviour
//
// The shim starts Argv (looked up on PATH like execvp; a missing command prints a line on stderr and exits
// 127, one that cannot be executed 126) with stdin, stdout and stderr inherited, so the container log is
// the command's. It forwards SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2; SIGTERM starts the stop sequence:
// preStop (bounded by the grace period), the stop signal, SIGKILL when the period is over (at least 2 s
// after the signal). It reaps every orphan, and exits with the command's code (128+signal when a signal
// ended it).
//
// postStart (exec, httpGet or sleep) runs as soon as the command has started, beside it; if it fails the
// shim stops the container and exits 137 with reason FailedPostStartHook. preStop runs on SIGTERM, on a
// probe kill, and with PreStopOnExit also after a natural exit; exec hooks write to the container log.
//
// Probes (exec, httpGet, tcpSocket, grpc) use Kubernetes' defaults (period 10 s, timeout 1 s, success 1,
// failure 3) and thresholds; each first runs initialDelaySeconds after the start, then every period.
// Network probes go to 127.0.0.1 unless they name a host; named ports resolve against Spec.Ports; HTTPS is
// not verified and proxies in the environment are ignored. A startup probe holds back the others until it
// succeeds; until then the container is not ready, and with no readiness probe it becomes ready then. A
// liveness or startup probe failing past its threshold writes reason Unhealthy and a message ("Liveness
// probe failed: HTTP probe failed with statuscode: 500"), runs the stop sequence (with the probe's own
// terminationGracePeriodSeconds when set) and exits 137, so the engine's restart policy applies.
package shim
