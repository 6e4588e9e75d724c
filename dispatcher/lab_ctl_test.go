package dispatcher

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// dispatcherctl against a real dispatcher over real backends: the binary, built as `make build` builds it,
// talks to the dispatcher of startLab, which runs the backend's real process on the lab's engine.

// ctlResult is one run of the binary.
type ctlResult struct {
	code           int
	stdout, stderr string
}

func ctlBinary(t *testing.T) string {
	t.Helper()
	return labtest.BuildBinary(t, "./cmd/dispatcherctl")
}

// ctl runs dispatcherctl with args against server and waits for it, for at most within.
func ctl(t *testing.T, server string, within time.Duration, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctlBinary(t), append(args, "--server", server)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "DISPATCHERCTL_SERVER=", "NO_COLOR=")
	err := cmd.Run()
	r := ctlResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("dispatcherctl %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("dispatcherctl %s did not end within %s; stdout %q stderr %q", strings.Join(args, " "), within, r.stdout, r.stderr)
	}
	return r
}

// lines is the output of a running dispatcherctl, line by line as it comes, with the time each came.
type lines struct {
	mu    sync.Mutex
	got   []string
	at    []time.Time
	added chan struct{}
	done  chan struct{}
	cmd   *exec.Cmd
	err   error
}

func startCtl(t *testing.T, server string, args ...string) *lines {
	t.Helper()
	cmd := exec.Command(ctlBinary(t), append(args, "--server", server)...)
	cmd.Env = append(os.Environ(), "DISPATCHERCTL_SERVER=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb labtest.Buffer
	cmd.Stderr = &errb
	l := &lines{added: make(chan struct{}, 1), done: make(chan struct{}), cmd: cmd}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
		<-l.done
		if t.Failed() {
			t.Logf("dispatcherctl %s: stderr %q", strings.Join(args, " "), errb.String())
		}
	})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.mu.Lock()
			l.got = append(l.got, sc.Text())
			l.at = append(l.at, time.Now())
			l.mu.Unlock()
			select {
			case l.added <- struct{}{}:
			default:
			}
		}
		l.err = cmd.Wait()
		close(l.done)
	}()
	return l
}

// until waits for a line matching re and returns it.
func (l *lines) until(t *testing.T, re string, within time.Duration) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(within)
	for {
		l.mu.Lock()
		for _, s := range l.got {
			if rx.MatchString(s) {
				l.mu.Unlock()
				return s
			}
		}
		l.mu.Unlock()
		select {
		case <-l.added:
		case <-l.done:
			l.mu.Lock()
			got := l.got
			l.mu.Unlock()
			for _, s := range got {
				if rx.MatchString(s) {
					return s
				}
			}
			t.Fatalf("dispatcherctl ended (%v) without a line matching %q; it printed:\n%s", l.err, re, strings.Join(got, "\n"))
		case <-deadline:
			t.Fatalf("no line matching %q within %s; printed so far:\n%s", re, within, strings.Join(l.snapshot(), "\n"))
		}
	}
}

func (l *lines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

// exit waits for the command to end and returns its exit code.
func (l *lines) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(within):
		t.Fatalf("dispatcherctl did not end within %s; printed:\n%s", within, strings.Join(l.snapshot(), "\n"))
	}
	if ee, ok := l.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if l.err != nil {
		t.Fatal(l.err)
	}
	return 0
}

// The manifests of the lab tests: a ConfigMap, and a Secret in a file of its own, which the pod mounts and
// reads into its environment.
const (
	ctlObjects = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data:
  greeting: hello from a configmap
`
	ctlSecret = `apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret-value}
`
	ctlPod = `---
apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'cat /etc/settings/greeting; echo; echo "env=$PASSWORD"; echo "file=$(cat /etc/creds/password)"; for i in $(seq 1 %d); do echo tick $i; sleep 1; done']
    env:
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    volumeMounts:
    - {name: settings, mountPath: /etc/settings}
    - {name: creds, mountPath: /etc/creds}
  volumes:
  - {name: settings, configMap: {name: settings}}
  - {name: creds, secret: {secretName: creds}}
`
)

func writeManifest(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hasAdminAPI reports whether the dispatcher serves the admin API. Until the admin API is in this tree the
// tests of get, describe and backends skip, except under CI=true, where they fail.
func hasAdminAPI(t *testing.T, server string) bool {
	t.Helper()
	resp, err := http.Get(server + "/api/v1/backends")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 {
		return true
	}
	if labtest.InCI() {
		t.Fatalf("the dispatcher serves no admin API: GET /api/v1/backends answered %d %s", resp.StatusCode, body)
	}
	t.Skipf("the dispatcher serves no admin API yet (GET /api/v1/backends: %d %s)", resp.StatusCode, strings.TrimSpace(string(body)))
	return false
}

var createdLine = regexp.MustCompile(`^pod/(\S+) created.* \(namespace (\S+), uid (\S+), remote id (\S*)\)$`)

// On each backend: a pod with a ConfigMap and a Secret applied with --wait to Succeeded, its log followed
// while it runs and read again after, the table and -o json checked, then deleted, all through dispatcherctl.
func TestLabDispatcherctlLifecycle(t *testing.T) {
	t.Parallel()
	for _, lb := range labBackends {
		t.Run(lb.name, func(t *testing.T) {
			t.Parallel()
			lb.require(t)
			e := startLab(t, lb.name, lb.config)
			server := e.http.URL
			ns := fmt.Sprintf("ctl-%s-%d", lb.name, time.Now().UnixNano()%1e9)
			objs := writeManifest(t, "objects.yaml", ctlObjects)
			secret := writeManifest(t, "secret.yaml", ctlSecret)
			pod := writeManifest(t, "pod.yaml", fmt.Sprintf(ctlPod, "hello", 8))

			apply := startCtl(t, server, "apply", "-f", objs, "-f", secret, "-f", pod, "-n", ns, "--backend", lb.name,
				"--wait", "--timeout", "4m", "--poll-interval", "500ms")
			m := createdLine.FindStringSubmatch(apply.until(t, `^pod/hello created`, time.Minute))
			if m == nil || m[2] != ns || m[4] == "" {
				t.Fatalf("the created line: %q", apply.snapshot())
			}
			uid := m[3]
			t.Cleanup(func() { ctl(t, server, time.Minute, "delete", "hello", "-n", ns, "--uid", uid, "--grace-period", "0") })
			apply.until(t, `^pod/hello: Running`, 4*time.Minute)

			// Followed while it runs: the lines come as they are written, and the follow ends with the container.
			follow := startCtl(t, server, "logs", "hello", "-n", ns, "--uid", uid, "-c", "main", "-f")
			follow.until(t, `^tick 8$`, time.Minute)
			if code := follow.exit(t, 30*time.Second); code != 0 {
				t.Fatalf("logs -f exited %d", code)
			}
			got := follow.snapshot()
			want := []string{"hello from a configmap", "env=s3cret-value", "file=s3cret-value"}
			if len(got) < 4 || strings.Join(got[:3], "\n") != strings.Join(want, "\n") {
				t.Fatalf("followed log:\n%s", strings.Join(got, "\n"))
			}
			first, last := -1, -1
			for i, s := range got {
				switch s {
				case "tick 1":
					first = i
				case "tick 8":
					last = i
				}
			}
			if first < 0 || last < 0 || follow.at[last].Sub(follow.at[first]) < 2*time.Second {
				t.Fatalf("the followed lines did not come as they were written: %q at %v", got, follow.at)
			}

			apply.until(t, `^pod/hello: Succeeded`, 2*time.Minute)
			if code := apply.exit(t, 30*time.Second); code != 0 {
				t.Fatalf("apply --wait exited %d for a pod that succeeded; it printed:\n%s", code, strings.Join(apply.snapshot(), "\n"))
			}

			r := ctl(t, server, time.Minute, "logs", "hello", "-n", ns, "--uid", uid, "-c", "main", "--tail", "2")
			if r.code != 0 || r.stdout != "tick 7\ntick 8\n" {
				t.Fatalf("logs --tail 2: %+v", r)
			}
			r = ctl(t, server, time.Minute, "logs", "hello", "-n", ns, "--uid", uid, "-c", "main", "--tail", "1", "--timestamps")
			if r.code != 0 || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) tick 8\n$`).MatchString(r.stdout) {
				t.Fatalf("logs --timestamps: %+v", r)
			}

			t.Run("admin API", func(t *testing.T) {
				if !hasAdminAPI(t, server) {
					return
				}
				r := ctl(t, server, time.Minute, "get", "pods", "-n", ns)
				row := regexp.MustCompile(`(?m)^hello\s+` + ns + `\s+` + lb.name + `\s+Succeeded\s+0/1\s+0\s+\S+$`)
				if r.code != 0 || !strings.HasPrefix(r.stdout, "NAME ") || !row.MatchString(r.stdout) || strings.Contains(r.stdout, "\x1b[") {
					t.Fatalf("get: %+v", r)
				}
				r = ctl(t, server, time.Minute, "get", "hello", "-n", ns, "-o", "json")
				var s struct {
					UID, Name, Namespace, Backend, Phase string
					RemoteID                             string `json:"remote_id"`
					Detail                               []struct {
						Name, State string
						ExitCode    *int `json:"exit_code"`
					} `json:"containers_detail"`
				}
				if err := json.Unmarshal([]byte(r.stdout), &s); r.code != 0 || err != nil {
					t.Fatalf("get -o json (%v): %+v", err, r)
				}
				if s.UID != uid || s.Backend != lb.name || s.Phase != "Succeeded" || s.RemoteID != m[4] || len(s.Detail) != 1 ||
					s.Detail[0].State != "terminated" || s.Detail[0].ExitCode == nil || *s.Detail[0].ExitCode != 0 {
					t.Fatalf("get -o json: %s", r.stdout)
				}
				// By name, looked up in the admin API: the only container needs no -c.
				r = ctl(t, server, time.Minute, "logs", "hello", "--tail", "1")
				if r.code != 0 || r.stdout != "tick 8\n" {
					t.Fatalf("logs by name: %+v", r)
				}
				r = ctl(t, server, time.Minute, "get", "nobody", "-n", ns)
				if r.code != 4 || !strings.Contains(r.stderr, "knows no pod called nobody in namespace "+ns) {
					t.Fatalf("get of an unknown pod: %+v", r)
				}
				r = ctl(t, server, time.Minute, "describe", "hello", "-n", ns)
				for _, w := range []string{"Backend:      " + lb.name, "Remote ID:    " + m[4], "Phase:        Succeeded", "State:          Terminated", "  Exit Code:    0"} {
					if !strings.Contains(r.stdout, w) {
						t.Errorf("describe lacks %q", w)
					}
				}
				if r.code != 0 || t.Failed() {
					t.Fatalf("describe: %+v", r)
				}
				r = ctl(t, server, time.Minute, "backends")
				if r.code != 0 || !regexp.MustCompile(`(?m)^`+lb.name+`\s+up\s+1\s`).MatchString(r.stdout) {
					t.Fatalf("backends: %+v", r)
				}
			})

			r = ctl(t, server, time.Minute, "delete", "hello", "-n", ns, "--uid", uid)
			if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pod %s/hello (%s) deleted from backend %s", ns, uid, lb.name)) {
				t.Fatalf("delete: %+v", r)
			}
			if _, found, _ := e.journal.Get(uid); found {
				t.Fatal("the pod is still in the journal after delete")
			}
		})
	}
}

// Bad manifests are refused before anything is sent, with the reason; a pod the dispatcher refuses prints the
// dispatcher's reason; each with the documented exit code.
func TestLabDispatcherctlRefusals(t *testing.T) {
	t.Parallel()
	labtest.RequireDocker(t)
	e := startLab(t, "docker", map[string]any{})
	server := e.http.URL
	for _, tc := range []struct {
		name, manifest string
		args           []string
		code           int
		want           string
	}{
		{"not a pod", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n", nil, 2, "document 1: is a Service, not a Pod, a ConfigMap or a Secret"},
		{"no containers", "apiVersion: v1\nkind: Pod\nmetadata: {name: empty}\nspec: {containers: []}\n", nil, 2,
			"pod empty has no containers; list at least one under spec.containers"},
		{"missing configmap", ctlSecret + fmt.Sprintf(ctlPod, "lonely", 1), nil, 2,
			`pod lonely: volume settings names the ConfigMap "settings", which is not in the manifests (none was given)`},
		{"unknown backend", ctlObjects + "---\n" + ctlSecret + fmt.Sprintf(ctlPod, "astray", 1), []string{"--backend", "nowhere"}, 1,
			`the dispatcher refused pod default/astray: the pod's annotation dispatcher.interlink.eu/backend names backend "nowhere", which is not configured; use one of: docker`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := writeManifest(t, "m.yaml", tc.manifest)
			r := ctl(t, server, time.Minute, append([]string{"apply", "-f", f}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q, want it to say %q", r.code, tc.code, r.stderr, tc.want)
			}
		})
	}
	if all, err := e.journal.All(); err != nil || len(all) != 0 {
		t.Fatalf("a refused pod reached the journal: %v %v", all, err)
	}
	r := ctl(t, server, time.Minute, "ping")
	if r.code != 0 || !strings.Contains(r.stdout, "answers interLink's ping: ok") {
		t.Fatalf("ping: %+v", r)
	}
	e.close()
	r = ctl(t, server, time.Minute, "ping")
	if r.code != 3 || !strings.Contains(r.stderr, "cannot reach the dispatcher at "+server+": nothing is listening there") {
		t.Fatalf("ping of a stopped dispatcher: %+v", r)
	}
}

// get -w in a real terminal: tmux runs it, and the screen (capture-pane) shows the pod's row change from
// Running to Succeeded, coloured, as a pod runs.
func TestLabDispatcherctlWatchInTmux(t *testing.T) {
	t.Parallel()
	labtest.RequireDocker(t)
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if labtest.InCI() {
			t.Fatal("tmux is required under CI=true (deploy/lab/lab.sh installs it)")
		}
		t.Skip("tmux is not installed")
	}
	e := startLab(t, "docker", map[string]any{})
	server := e.http.URL
	if !hasAdminAPI(t, server) {
		return
	}
	ns := fmt.Sprintf("ctl-watch-%d", time.Now().UnixNano()%1e9)
	session := fmt.Sprintf("dispatcherctl-test-%d", os.Getpid())
	cmdline := fmt.Sprintf("%s get -w -n %s --poll-interval 300ms --server %s", ctlBinary(t), ns, server)
	if out, err := exec.Command(tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "40", cmdline).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command(tmux, "kill-session", "-t", session).Run() })
	screen := func(escapes bool) string {
		args := []string{"capture-pane", "-p", "-t", session}
		if escapes {
			args = append(args, "-e")
		}
		out, err := exec.Command(tmux, args...).Output()
		if err != nil {
			t.Fatalf("tmux capture-pane: %v", err)
		}
		return string(out)
	}
	waitScreen := func(re string, within time.Duration) string {
		t.Helper()
		rx := regexp.MustCompile(re)
		deadline := time.Now().Add(within)
		for {
			s := screen(false)
			if rx.MatchString(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("the screen does not show %q after %s:\n%s", re, within, s)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitScreen(`(?m)^NAME\s+NAMESPACE\s+BACKEND\s+PHASE\s+READY\s+RESTARTS\s+AGE$`, 30*time.Second)

	pod := writeManifest(t, "pod.yaml", ctlObjects+"---\n"+ctlSecret+fmt.Sprintf(ctlPod, "watched", 4))
	r := ctl(t, server, 3*time.Minute, "apply", "-f", pod, "-n", ns, "--wait", "--timeout", "2m")
	if r.code != 0 {
		t.Fatalf("apply --wait: %+v", r)
	}
	m := createdLine.FindStringSubmatch(strings.SplitN(r.stdout, "\n", 2)[0])
	if m == nil {
		t.Fatalf("apply: %q", r.stdout)
	}
	defer ctl(t, server, time.Minute, "delete", "watched", "-n", ns, "--uid", m[3], "--grace-period", "0")
	s := waitScreen(`(?m)^watched\s+`+ns+`\s+docker\s+Succeeded\s+0/1\s+0\s+\S+$`, 30*time.Second)
	if !regexp.MustCompile(`(?m)^watched\s+` + ns + `\s+docker\s+Running\s+1/1\s+0\s+\S+$`).MatchString(s) {
		t.Fatalf("the screen never showed the pod Running before Succeeded:\n%s", s)
	}
	// On a terminal the phases are coloured (green for Succeeded).
	if esc := screen(true); !strings.Contains(esc, "\x1b[32mSucceeded") {
		t.Fatalf("no colour on the terminal:\n%q", esc)
	}
	// Deleted: the watch prints the row once more as Deleted.
	if r := ctl(t, server, time.Minute, "delete", "watched", "-n", ns); r.code != 0 {
		t.Fatalf("delete by name: %+v", r)
	}
	waitScreen(`(?m)^watched\s+`+ns+`\s+docker\s+Deleted\s`, 30*time.Second)
}

// Behind access.token_file the binary is refused with the dispatcher's sentence without a token, and runs a
// pod with the token from --token-file.
func TestLabDispatcherctlToken(t *testing.T) {
	t.Parallel()
	labtest.RequireDocker(t)
	tokens := writeSecret(t, t.TempDir(), "tokens", testToken+"\n", 0o600)
	e := startLab(t, "docker", map[string]any{}, func(c *Config) { c.Access.TokenFile = tokens })
	server := e.http.URL
	r := ctl(t, server, time.Minute, "ping")
	if r.code != 1 || !strings.Contains(r.stderr, "a bearer token is required: send the header Authorization: Bearer <token>") {
		t.Fatalf("ping without a token: %+v", r)
	}
	mine := writeSecret(t, t.TempDir(), "token", testToken+"\n", 0o600)
	pod := writeManifest(t, "pod.yaml", ctlObjects+"---\n"+ctlSecret+fmt.Sprintf(ctlPod, "tokened", 1))
	r = ctl(t, server, 3*time.Minute, "apply", "-f", pod, "--token-file", mine, "--wait", "--timeout", "2m")
	m := createdLine.FindStringSubmatch(strings.SplitN(r.stdout, "\n", 2)[0])
	if r.code != 0 || m == nil || !strings.HasSuffix(r.stdout, "pod/tokened: Succeeded: container main exited 0\n") {
		t.Fatalf("apply with the token: %+v", r)
	}
	r = ctl(t, server, time.Minute, "delete", "tokened", "--uid", m[3], "--token-file", mine)
	if r.code != 0 || !strings.Contains(r.stdout, "deleted from backend docker") {
		t.Fatalf("delete with the token: %+v", r)
	}
}
