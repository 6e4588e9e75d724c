package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
)

// healthMain is `interlink-dispatcher health`: it asks a running dispatcher's /healthz and returns 0 when
// it answers 200, 1 otherwise; a container image's HEALTHCHECK runs it, since the image has no curl. The
// address is --url, else the config's listen.unix (no access control applies there), else listen.tcp
// (an unspecified host, 0.0.0.0 or [::], is asked on loopback; with listen.tls, over HTTPS without
// verifying the dispatcher's certificate, which is the dispatcher's own).
func healthMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("interlink-dispatcher health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.yaml", "the config of the dispatcher to ask")
	url := fs.String("url", "", "ask this URL instead, e.g. http://127.0.0.1:4000/healthz")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "interlink-dispatcher health: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	target := *url
	if target == "" {
		cfg, err := dispatcher.LoadConfig(dispatcher.LoadOptions{Path: *configPath, Environ: os.Environ()})
		if err != nil {
			fmt.Fprintf(stderr, "interlink-dispatcher health: %v\n", err)
			return 1
		}
		target, client.Transport = healthTarget(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(stderr, "interlink-dispatcher health: %v\n", err)
		return 2
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "interlink-dispatcher health: unhealthy: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "interlink-dispatcher health: unhealthy: %s answered %s: %s\n", target, resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintf(stdout, "healthy: %s\n", strings.TrimSpace(string(body)))
	return 0
}

// healthTarget is the /healthz URL of the dispatcher cfg configures, and the transport that reaches it.
func healthTarget(cfg dispatcher.Config) (string, http.RoundTripper) {
	if cfg.Listen.Unix != "" {
		sock := cfg.Listen.Unix
		return "http://unix/healthz", &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}
	}
	host, port, err := net.SplitHostPort(cfg.Listen.TCP)
	if err != nil {
		host, port = cfg.Listen.TCP, ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	scheme, tr := "http", &http.Transport{}
	if cfg.Listen.TLS.CertFile != "" {
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // its own certificate, asked on loopback
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz", tr
}
