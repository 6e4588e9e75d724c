package docker

import (
	"net"
	"net/url"
	"time"
)

// engineAccepting tells whether the engine takes new connections. dockerd stops listening the moment it is
// told to stop, then goes on serving the connections it has (the client's kept-alive ones) while it stops its
// containers and its containerd. A container started on one of those in that second gets a containerd task
// that the next dockerd refuses to start again ("task … already exists"), so the pod could not ride the
// restart out with its own pause container. The runner asks this before each start it makes on its own (a
// dead pause, a container's next attempt, a created run): a fresh dial fails from the moment dockerd began to
// stop, and the start waits for the runner's next pass, when the engine is back. An address this cannot dial
// (ssh://, npipe://) counts as accepting.
func (b *Backend) engineAccepting() bool {
	network, address, ok := dialAddress(b.cli.DaemonHost())
	if !ok {
		return true
	}
	c, err := net.DialTimeout(network, address, 2*time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// dialAddress turns a Docker host (unix:///var/run/docker.sock, tcp://host:2375) into what net.Dial takes.
func dialAddress(host string) (network, address string, ok bool) {
	u, err := url.Parse(host)
	if err != nil {
		return "", "", false
	}
	switch u.Scheme {
	case "unix":
		return "unix", u.Path, u.Path != ""
	case "tcp", "http", "https":
		return "tcp", u.Host, u.Host != ""
	}
	return "", "", false
}
