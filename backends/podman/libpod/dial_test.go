package libpod

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

func TestDialerAddresses(t *testing.T) {
	good := []string{"unix:///run/podman/podman.sock", "/run/user/1000/podman/podman.sock", "tcp://127.0.0.1:8888",
		"ssh://core@example.org:2222/run/podman/podman.sock", "ssh://example.org/run/user/1000/podman/podman.sock"}
	for _, uri := range good {
		if _, err := dialer(uri, ""); err != nil {
			t.Errorf("dialer(%q) = %v, want accepted", uri, err)
		}
	}
	bad := map[string]string{
		"http://127.0.0.1:8888":  "scheme",
		"tcp://127.0.0.1":        "tcp://host:port",
		"ssh://example.org":      "ssh://",
		"unix://relative/x.sock": "absolute",
	}
	for uri, want := range bad {
		if _, err := dialer(uri, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("dialer(%q) = %v, want an error mentioning %q", uri, err, want)
		}
	}
}

// An ssh:// service that cannot be reached ends with ssh's own explanation, not a bare EOF.
func TestSSHDialReportsSSHError(t *testing.T) {
	c, err := New("ssh://nobody@127.0.0.1:1/run/podman/podman.sock", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ssh to nobody@127.0.0.1") {
		t.Fatalf("Ping over an unreachable ssh = %v, want an error quoting ssh", err)
	}
}

// fakeSSH stands in for the ssh command: it records its arguments and forwards stdin/stdout to the unix
// socket named by -W, which is what OpenSSH does on the remote side. It checks the client's command line and
// its connection plumbing against the real service; ssh itself is not exercised.
const fakeSSH = `#!/usr/bin/env python3
import os, socket, sys, threading
args = sys.argv[1:]
with open(os.environ["FAKE_SSH_ARGS"], "a") as f:
    f.write(" ".join(args) + "\n")
s = socket.socket(socket.AF_UNIX)
s.connect(args[args.index("-W") + 1])
def up():
    while True:
        d = os.read(0, 65536)
        if not d:
            s.shutdown(socket.SHUT_WR)
            return
        s.sendall(d)
threading.Thread(target=up, daemon=True).start()
while True:
    d = s.recv(65536)
    if not d:
        break
    os.write(1, d)
`

func TestSSHTransportCommandLine(t *testing.T) {
	labtest.RequirePodman(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed for the stand-in ssh command")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ssh"), []byte(fakeSSH), 0o755); err != nil {
		t.Fatal(err)
	}
	argsFile := filepath.Join(dir, "args")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_SSH_ARGS", argsFile)
	c, err := New("ssh://alice@podman-host:2222"+labtest.PodmanSocket, "/keys/id_ed25519")
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Ping(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckVersion(v); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(argsFile)
	for _, want := range []string{"-W " + labtest.PodmanSocket, "-p 2222", "-i /keys/id_ed25519", "-- alice@podman-host", "BatchMode=yes"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("ssh was run with %q, missing %q", strings.TrimSpace(string(args)), want)
		}
	}
}

// tcp:// reaches the service through a loopback TCP forwarder to the lab's socket, standing in for a
// `podman system service tcp://...`.
func TestTCPTransport(t *testing.T) {
	labtest.RequirePodman(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				up, err := net.Dial("unix", labtest.PodmanSocket)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, conn) }()
				_, _ = io.Copy(conn, up)
			}()
		}
	}()
	c, err := New("tcp://"+ln.Addr().String(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
}
