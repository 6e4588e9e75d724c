package shim

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// defaultHost is where probes and hooks connect when they name no host: the pod's own address seen from
// inside its network namespace.
const defaultHost = "127.0.0.1"

// userAgent is what the kubelet sends, so that applications that treat probes specially still recognise them.
const userAgent = "kube-probe/1.37"

// maxOutput bounds what is kept of a probe's response or output for its message, as the kubelet does.
const maxOutput = 10 * 1024

// runner carries out handlers (the actions of probes and hooks) inside the container.
type runner struct {
	reaper *reaper
	dir    string
	ports  []v1.ContainerPort
}

// checkHandler tells whether a handler names exactly one action the shim can run. hook is false for probes:
// tcpSocket is kept in lifecycle hooks by Kubernetes only for compatibility and never run, and grpc exists
// only for probes.
func checkHandler(ex *v1.ExecAction, hg *v1.HTTPGetAction, tcp *v1.TCPSocketAction, g *v1.GRPCAction, sl *v1.SleepAction, ports []v1.ContainerPort, hook bool) error {
	n := 0
	for _, set := range []bool{ex != nil, hg != nil, tcp != nil, g != nil, sl != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("no action is set (exec, httpGet, tcpSocket, grpc or sleep)")
	case n > 1:
		return errors.New("more than one action is set")
	case ex != nil && len(ex.Command) == 0:
		return errors.New("exec has no command")
	case hg != nil:
		if _, err := resolvePort(hg.Port, ports); err != nil {
			return err
		}
		if s := strings.ToUpper(string(hg.Scheme)); s != "" && s != "HTTP" && s != "HTTPS" {
			return fmt.Errorf("httpGet scheme %q is neither HTTP nor HTTPS", hg.Scheme)
		}
	case tcp != nil && hook:
		return errors.New("tcpSocket is not supported as a lifecycle hook (Kubernetes never runs it)")
	case tcp != nil:
		if _, err := resolvePort(tcp.Port, ports); err != nil {
			return err
		}
	case g != nil && (g.Port < 1 || g.Port > 65535):
		return fmt.Errorf("grpc port %d is out of range", g.Port)
	case sl != nil && sl.Seconds < 0:
		return fmt.Errorf("sleep of %d seconds is negative", sl.Seconds)
	}
	return nil
}

// resolvePort turns a port number or the name of one of the container's ports into a number.
func resolvePort(p intstr.IntOrString, ports []v1.ContainerPort) (int, error) {
	n := p.IntValue()
	if p.Type == intstr.String {
		if v, err := strconv.Atoi(p.StrVal); err == nil {
			n = v
		} else {
			n = 0
			for _, cp := range ports {
				if cp.Name == p.StrVal {
					n = int(cp.ContainerPort)
					break
				}
			}
			if n == 0 {
				return 0, fmt.Errorf("port %q is not the name of one of the container's ports", p.StrVal)
			}
		}
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %s is out of range", p.String())
	}
	return n, nil
}

// exec runs argv in the container's environment and returns its exit code. Output goes to stdout and
// stderr (the container log) when they are set, else it is captured, bounded, into the returned text.
// ctx ends it: its whole process group is killed.
func (r *runner) exec(ctx context.Context, argv []string, stdout, stderr *os.File) (int, string, error) {
	path, err := lookCommand(argv[0], r.dir)
	if err != nil {
		return 0, "", err
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Dir: r.dir, Env: os.Environ(), Stdout: stdout, Stderr: stderr}
	var (
		out     bytes.Buffer
		readers sync.WaitGroup
		pr, pw  *os.File
	)
	if stdout == nil {
		if pr, pw, err = pipeTo(&out, &readers); err != nil {
			return 0, "", err
		}
		cmd.Stdout, cmd.Stderr = pw, pw
	}
	p, err := r.reaper.start(cmd, true)
	if pw != nil {
		pw.Close() // the child holds its own copy; the reader sees EOF once the child's is gone
	}
	if err != nil {
		return 0, "", err
	}
	ws, werr := p.wait(ctx)
	if pr != nil {
		// A background process may hold the pipe open for ever; what it has written so far is enough.
		pr.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		readers.Wait()
		pr.Close()
	}
	if werr != nil {
		return 0, out.String(), fmt.Errorf("command %q timed out", strings.Join(argv, " "))
	}
	return exitCode(ws), out.String(), nil
}

// pipeTo makes a pipe whose read end is copied into buf (up to maxOutput) by a goroutine counted in wg.
func pipeTo(buf *bytes.Buffer, wg *sync.WaitGroup) (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot make a pipe for the command's output: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(buf, io.LimitReader(r, maxOutput))
		io.Copy(io.Discard, r)
	}()
	return r, w, nil
}

// httpGet performs an httpGet action. ok is false with a message when the answer is not 2xx/3xx.
func (r *runner) httpGet(ctx context.Context, a *v1.HTTPGetAction) (bool, string) {
	port, err := resolvePort(a.Port, r.ports)
	if err != nil {
		return false, err.Error()
	}
	host := a.Host
	if host == "" {
		host = defaultHost
	}
	scheme := strings.ToLower(string(a.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := a.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(path)
	if err != nil {
		return false, fmt.Sprintf("path %q is not a valid URL path: %v", a.Path, err)
	}
	u.Scheme, u.Host = scheme, net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	for _, h := range a.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Set(h.Name, h.Value)
	}
	client := &http.Client{Transport: &http.Transport{
		// Proxies from the container's environment must not see probes meant for the container itself.
		Proxy:             nil,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
	}}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxOutput))
	if resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusBadRequest {
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return true, ""
}

// tcpSocket succeeds when a TCP connection can be opened.
func (r *runner) tcpSocket(ctx context.Context, a *v1.TCPSocketAction) (bool, string) {
	port, err := resolvePort(a.Port, r.ports)
	if err != nil {
		return false, err.Error()
	}
	host := a.Host
	if host == "" {
		host = defaultHost
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false, err.Error()
	}
	conn.Close()
	return true, ""
}

// grpcCheck asks the gRPC health checking protocol; only SERVING succeeds.
func (r *runner) grpcCheck(ctx context.Context, a *v1.GRPCAction) (bool, string) {
	addr := net.JoinHostPort(defaultHost, strconv.Itoa(int(a.Port)))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent(userAgent))
	if err != nil {
		return false, fmt.Sprintf("cannot reach the gRPC service at %s: %v", addr, err)
	}
	defer conn.Close()
	service := ""
	if a.Service != nil {
		service = *a.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return false, fmt.Sprintf("gRPC health check of service %q at %s failed: %v", service, addr, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return false, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String())
	}
	return true, ""
}
