package dispatcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// A pod that shares the host's network (a Docker pod with hostNetwork: true; a SLURM job, whose containers
// always do) reaches the dispatcher's TCP port on loopback, as in the trial that found the API open: with
// access.token_file set it is refused with 401, with no token and with a wrong one, and it cannot see the
// unix socket at all. The dispatcher is the command, over the real backend binary.
func TestLabHostNetworkPodRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		require     func(testing.TB)
		config      map[string]any
		policy      map[string]any
		hostNetwork bool
	}{
		// The docker stanza's policy allows host networking (refused by default): the create is checked to
		// answer 200, so a refusal would fail the test rather than pass it.
		{"docker", labtest.RequireDocker, map[string]any{}, map[string]any{"host_network": true}, true},
		{"slurm", labtest.RequireSLURM, map[string]any{"runtime": "podman", "default_memory": "128M"}, map[string]any{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.require(t)
			dir := t.TempDir()
			disp := labtest.BuildBinary(t, "./cmd/interlink-dispatcher")
			bin := labtest.BuildBackend(t, "./cmd/backend-"+tc.name)
			tokens := writeSecret(t, dir, "tokens", testToken+"\n", 0o600)
			apiAddr, sock := labtest.FreeAddr(t), filepath.Join(dir, "api.sock")
			raw, err := yaml.Marshal(map[string]any{
				"instance": fmt.Sprintf("access-test-%d", time.Now().UnixNano()),
				"data_dir": filepath.Join(dir, "data"),
				"listen":   map[string]any{"tcp": apiAddr, "unix": sock},
				"access":   map[string]any{"token_file": tokens},
				"routing":  map[string]any{"default": tc.name},
				"backends": []map[string]any{{"name": tc.name, "binary": bin, "config": tc.config, "policy": tc.policy}},
			})
			if err != nil {
				t.Fatal(err)
			}
			cfgPath := filepath.Join(dir, "config.yaml")
			os.WriteFile(cfgPath, raw, 0o644)
			stderr := &labtest.Buffer{}
			cmd := exec.Command(disp, "--config", cfgPath)
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			finished := make(chan struct{})
			go func() { cmd.Wait(); close(finished) }()
			t.Cleanup(func() {
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-finished:
				case <-time.After(40 * time.Second):
					cmd.Process.Kill()
					<-finished
				}
				if t.Failed() {
					t.Logf("dispatcher log (last lines):\n%s", tail(stderr.Lines(), 40))
				}
			})
			api := func(path string, body any) (int, string) {
				t.Helper()
				method, raw := "POST", []byte(nil)
				if body == nil {
					method = "GET"
				} else {
					raw, _ = json.Marshal(body)
				}
				req, _ := http.NewRequest(method, "http://"+apiAddr+path, bytes.NewReader(raw))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return 0, err.Error()
				}
				defer resp.Body.Close()
				out, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(out)
			}
			for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
				if code, _ := api("/readyz", nil); code == 200 {
					break
				}
				select {
				case <-finished:
					t.Fatalf("the dispatcher exited:\n%s", tail(stderr.Lines(), 40))
				default:
				}
				if time.Now().After(deadline) {
					t.Fatal("the dispatcher is not ready within 2 minutes")
				}
			}

			url := "http://" + apiAddr + "/status"
			p := labPod(fmt.Sprintf("access-%s-%d", tc.name, time.Now().UnixNano()), fmt.Sprintf(
				`wget -q -O- %[1]s 2>&1; echo "no token: exit $?"; `+
					`wget -q -O- --header 'Authorization: Bearer wrong-token-0123456789' %[1]s 2>&1; echo "wrong token: exit $?"; `+
					`if [ -e %[2]s ]; then echo "socket visible"; else echo "socket absent"; fi`, url, sock))
			p.Spec.HostNetwork = tc.hostNetwork
			if code, body := api("/create", createBody(p)); code != 200 {
				t.Fatalf("create: %d %s", code, body)
			}
			defer api("/delete", p)
			for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
				code, body := api("/status", []*v1.Pod{p})
				var st []interlink.PodStatus
				if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st) != 1 || len(st[0].Containers) != 1 {
					t.Fatalf("status: %d %s", code, body)
				}
				if s := st[0].Containers[0].State.Terminated; s != nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the pod did not finish within 2 minutes: %s", body)
				}
			}
			code, logs := api("/getLogs", interlink.LogStruct{Namespace: p.Namespace, PodUID: string(p.UID), PodName: p.Name, ContainerName: "main"})
			if code != 200 {
				t.Fatalf("logs: %d %s", code, logs)
			}
			t.Logf("the pod's log:\n%s", logs)
			// 401 twice proves both that the pod reached the API on loopback and that it was refused.
			if strings.Count(logs, "401 Unauthorized") != 2 || !strings.Contains(logs, "no token: exit 1") ||
				!strings.Contains(logs, "wrong token: exit 1") || !strings.Contains(logs, "socket absent") {
				t.Fatalf("the pod's log:\n%s", logs)
			}
			// The dispatcher logged both refusals, and never the token sent.
			var refused int
			for _, l := range stderr.Lines() {
				if strings.Contains(l, "status=401") && strings.Contains(l, "path=/status") && strings.Contains(l, "remote=127.0.0.1:") {
					refused++
				}
				if strings.Contains(l, "wrong-token") || strings.Contains(l, testToken) {
					t.Fatalf("a token in the log: %s", l)
				}
			}
			if refused != 2 {
				t.Fatalf("%d refusals logged, want 2:\n%s", refused, tail(stderr.Lines(), 20))
			}
		})
	}
}
