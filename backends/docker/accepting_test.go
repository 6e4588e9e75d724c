package docker

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/docker/docker/client"
)

func TestDialAddress(t *testing.T) {
	for _, c := range []struct{ host, network, address string }{
		{"unix:///var/run/docker.sock", "unix", "/var/run/docker.sock"},
		{"tcp://10.0.0.1:2375", "tcp", "10.0.0.1:2375"},
		{"ssh://user@host", "", ""},
		{"npipe:////./pipe/docker_engine", "", ""},
	} {
		network, address, ok := dialAddress(c.host)
		if network != c.network || address != c.address || ok != (c.network != "") {
			t.Errorf("dialAddress(%q) = %q, %q, %v; want %q, %q", c.host, network, address, ok, c.network, c.address)
		}
	}
}

// An engine that stopped listening (as dockerd does the moment it begins to stop) is not accepting, though the
// client may still hold a kept-alive connection to it.
func TestEngineAccepting(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := client.NewClientWithOpts(client.WithHost("unix://" + sock))
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{cli: dockerClient{cli}}
	if !b.engineAccepting() {
		t.Fatal("an engine listening on its socket is not accepting")
	}
	_ = l.Close()
	if b.engineAccepting() {
		t.Fatal("an engine that stopped listening is accepting")
	}
}
