package dispatcher

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	testToken  = "first-token-0123456789abcdef"
	testToken2 = "second-token-0123456789abcdef"
)

// writeSecret writes content to dir/name with the given mode (whatever the umask) and returns the path.
func writeSecret(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// testPKI is a CA, a server certificate for 127.0.0.1 and a client certificate it signed, plus a client
// certificate of another CA, as PEM files in a directory.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	client, rogue             tls.Certificate
	pool                      *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir, pool: x509.NewCertPool()}
	ca, caKey, caPEM := makeCert(t, "test CA", nil, nil, func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid, c.KeyUsage = true, true, x509.KeyUsageCertSign
	})
	p.pool.AddCert(ca)
	p.caFile = writeSecret(t, dir, "ca.pem", string(caPEM), 0o644)
	_, srvKey, srvPEM := makeCert(t, "dispatcher", ca, caKey, func(c *x509.Certificate) {
		c.IPAddresses, c.ExtKeyUsage = []net.IP{net.ParseIP("127.0.0.1")}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	p.certFile = writeSecret(t, dir, "server.pem", string(srvPEM), 0o644)
	p.keyFile = writeSecret(t, dir, "server-key.pem", string(keyPEM(t, srvKey)), 0o600)
	clientUsage := func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }
	_, cliKey, cliPEM := makeCert(t, "interlink", ca, caKey, clientUsage)
	var err error
	if p.client, err = tls.X509KeyPair(cliPEM, keyPEM(t, cliKey)); err != nil {
		t.Fatal(err)
	}
	other, otherKey, _ := makeCert(t, "other CA", nil, nil, func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid, c.KeyUsage = true, true, x509.KeyUsageCertSign
	})
	_, rogueKey, roguePEM := makeCert(t, "intruder", other, otherKey, clientUsage)
	if p.rogue, err = tls.X509KeyPair(roguePEM, keyPEM(t, rogueKey)); err != nil {
		t.Fatal(err)
	}
	return p
}

// makeCert makes a certificate signed by parent (self-signed when parent is nil).
func makeCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, edit func(*x509.Certificate)) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	edit(tmpl)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(t *testing.T, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func TestLoadConfigAccess(t *testing.T) {
	// The defaults: loopback only, /healthz open, the socket 0660.
	cfg, err := LoadConfig(LoadOptions{Path: writeConfig(t, goodConfig), Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Access.AllowNetworks, ",") != "127.0.0.0/8,::1/128" || strings.Join(cfg.Access.OpenPaths, ",") != "/healthz" ||
		cfg.Listen.UnixMode != 0o660 || cfg.Listen.UnixGroup != "" || cfg.Access.TokenFile != "" || cfg.Listen.TLS != (TLSConfig{}) {
		t.Fatalf("defaults: %+v %+v", cfg.Access, cfg.Listen)
	}

	pki := newTestPKI(t)
	path := writeConfig(t, strings.Replace(goodConfig, "  unix: /tmp/x.sock\n", fmt.Sprintf(`  unix: /tmp/x.sock
  unix_mode: "0640"
  unix_group: nogroup
  tls: {cert_file: %s, key_file: %s, client_ca_file: %s}
access:
  allow_networks: [10.0.0.0/8, 127.0.0.1]
  token_file: tokens
  open_paths: [/healthz, /metrics]
`, pki.certFile, pki.keyFile, pki.caFile), 1))
	dir := filepath.Dir(path)
	writeSecret(t, dir, "tokens", "# rotation: the new one first\n"+testToken2+"\n\n"+testToken+"\n", 0o600)
	cfg, err = LoadConfig(LoadOptions{Path: path, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.UnixMode != 0o640 || cfg.Listen.UnixGroup != "nogroup" || cfg.Access.TokenFile != filepath.Join(dir, "tokens") ||
		cfg.Listen.TLS.ClientCAFile != pki.caFile || strings.Join(cfg.Access.OpenPaths, ",") != "/healthz,/metrics" ||
		strings.Join(cfg.Access.AllowNetworks, ",") != "10.0.0.0/8,127.0.0.1" {
		t.Fatalf("access keys: %+v %+v", cfg.Access, cfg.Listen)
	}

	// Every scalar key and list has its environment variable.
	other := writeSecret(t, dir, "other-tokens", testToken+"\n", 0o640)
	cfg, err = LoadConfig(LoadOptions{Path: path, Environ: []string{
		"INTERLINK_DISPATCHER_ACCESS_ALLOW_NETWORKS=192.168.0.0/16, ::1",
		"INTERLINK_DISPATCHER_ACCESS_TOKEN_FILE=" + other,
		"INTERLINK_DISPATCHER_ACCESS_OPEN_PATHS=/readyz",
		"INTERLINK_DISPATCHER_LISTEN_UNIX_MODE=0600",
		"INTERLINK_DISPATCHER_LISTEN_UNIX_GROUP=0",
		"INTERLINK_DISPATCHER_LISTEN_TLS_CLIENT_CA_FILE=",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Access.AllowNetworks, ",") != "192.168.0.0/16,::1" || cfg.Access.TokenFile != other ||
		strings.Join(cfg.Access.OpenPaths, ",") != "/readyz" || cfg.Listen.UnixMode != 0o600 || cfg.Listen.UnixGroup != "0" ||
		cfg.Listen.TLS.ClientCAFile != "" {
		t.Fatalf("environment overrides: %+v %+v", cfg.Access, cfg.Listen)
	}
}

func TestLoadConfigAccessErrors(t *testing.T) {
	pki := newTestPKI(t)
	secrets := t.TempDir()
	readable := writeSecret(t, secrets, "world-readable", testToken+"\n", 0o644)
	writable := writeSecret(t, secrets, "group-writable", testToken+"\n", 0o660)
	short := writeSecret(t, secrets, "short", "abc\n", 0o600)
	empty := writeSecret(t, secrets, "empty", "# nothing yet\n\n", 0o600)
	openKey := writeSecret(t, secrets, "open-key.pem", func() string { b, _ := os.ReadFile(pki.keyFile); return string(b) }(), 0o644)
	listen := func(extra string) string {
		return strings.Replace(goodConfig, "  unix: /tmp/x.sock\n", "  unix: /tmp/x.sock\n"+extra, 1)
	}
	access := func(extra string) string { return goodConfig + "access:\n" + extra }
	for _, tc := range []struct {
		name string
		yaml string
		env  []string
		want []string
	}{
		{"bad CIDR", access("  allow_networks: [10.0.0.0/33]\n"), nil, []string{"access.allow_networks", `"10.0.0.0/33"`}},
		{"not a network", access("  allow_networks: [localhost]\n"), nil, []string{"access.allow_networks", `"localhost"`}},
		{"no network", access("  allow_networks: []\n"), nil, []string{"access.allow_networks", "at least one"}},
		{"no network from the environment", goodConfig, []string{"INTERLINK_DISPATCHER_ACCESS_ALLOW_NETWORKS="}, []string{"access.allow_networks", "at least one"}},
		{"missing token file", access("  token_file: /nonexistent/tokens\n"), nil, []string{"access.token_file", "/nonexistent/tokens"}},
		{"world-readable token file", access("  token_file: " + readable + "\n"), nil, []string{"access.token_file", "0644", "chmod 0600"}},
		{"group-writable token file", access("  token_file: " + writable + "\n"), nil, []string{"access.token_file", "0660"}},
		{"short token", access("  token_file: " + short + "\n"), nil, []string{"access.token_file", "line 1", "16 characters"}},
		{"no token", access("  token_file: " + empty + "\n"), nil, []string{"access.token_file", "no token"}},
		{"open path that changes things", access("  open_paths: [/healthz, /create]\n"), nil, []string{"access.open_paths[1]", `"/create"`}},
		{"missing cert file", listen(fmt.Sprintf("  tls: {cert_file: /nonexistent/cert.pem, key_file: %s}\n", pki.keyFile)), nil, []string{"listen.tls", "/nonexistent/cert.pem"}},
		{"cert without key", listen(fmt.Sprintf("  tls: {cert_file: %s}\n", pki.certFile)), nil, []string{"listen.tls", "both cert_file and key_file"}},
		{"client CA without cert", listen(fmt.Sprintf("  tls: {client_ca_file: %s}\n", pki.caFile)), nil, []string{"listen.tls.client_ca_file", "cert_file"}},
		{"client CA not PEM", listen(fmt.Sprintf("  tls: {cert_file: %s, key_file: %s, client_ca_file: %s}\n", pki.certFile, pki.keyFile, short)), nil, []string{"listen.tls", "no PEM certificate"}},
		{"key readable by others", listen(fmt.Sprintf("  tls: {cert_file: %s, key_file: %s}\n", pki.certFile, openKey)), nil, []string{"listen.tls.key_file", "0644"}},
		{"TLS without TCP", strings.Replace(listen(fmt.Sprintf("  tls: {cert_file: %s, key_file: %s}\n", pki.certFile, pki.keyFile)), "  tcp: 127.0.0.1:4100\n", "  tcp: \"\"\n", 1), nil, []string{"listen.tls", "listen.tcp"}},
		{"socket open to everyone", listen("  unix_mode: \"0666\"\n"), nil, []string{"listen.unix_mode", "0666", "every local user"}},
		{"socket mode unquoted", listen("  unix_mode: 0660\n"), nil, []string{"listen.unix_mode", "quoted", `"0660"`}},
		{"socket mode not octal", listen("  unix_mode: \"rw-rw----\"\n"), nil, []string{"listen.unix_mode", "octal"}},
		{"socket mode from the environment", goodConfig, []string{"INTERLINK_DISPATCHER_LISTEN_UNIX_MODE=0777"}, []string{"listen.unix_mode", "0777"}},
		{"unknown group", listen("  unix_group: no-such-group-here\n"), nil, []string{"listen.unix_group", `"no-such-group-here"`}},
		{"abstract socket", strings.Replace(goodConfig, "unix: /tmp/x.sock", "unix: \"@dispatcher\"", 1), nil, []string{"listen.unix", "abstract", "host-network"}},
		{"unknown access key", access("  tokens: x\n"), nil, []string{"access.tokens", "not a known key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(LoadOptions{Path: writeConfig(t, tc.yaml), Environ: tc.env})
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// call sends a request as interLink would, with the token when not "", and returns status, headers and body.
func call(t *testing.T, c *http.Client, method, url, token, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// oneSentence fails unless body is one line of text naming what.
func oneSentence(t *testing.T, body, what string) {
	t.Helper()
	if strings.Count(strings.TrimSpace(body), "\n") != 0 || !strings.Contains(body, what) {
		t.Fatalf("body %q is not one sentence naming %q", body, what)
	}
}

func TestBearerToken(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	tokens := writeSecret(t, t.TempDir(), "tokens", testToken+"\n", 0o600)
	cfg.Access.TokenFile = tokens
	mem := newMem("alpha")
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": mem})
	c := http.DefaultClient
	pod := `{"pod": {"metadata": {"uid": "tok-1", "name": "p", "namespace": "default"}, "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}`

	code, h, body := call(t, c, "POST", e.http.URL+"/create", "", pod)
	if code != 401 || h.Get("WWW-Authenticate") != `Bearer realm="interlink-dispatcher"` {
		t.Fatalf("no token: %d %v %q", code, h, body)
	}
	oneSentence(t, body, "Authorization: Bearer")
	if code, h, body = call(t, c, "POST", e.http.URL+"/create", "wrong-token-0123456789", pod); code != 401 || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("wrong token: %d %q", code, body)
	}
	oneSentence(t, body, "not one of access.token_file")
	// Refused requests changed nothing.
	if _, found, _ := e.journal.Get("tok-1"); found || mem.createCount() != 0 {
		t.Fatal("a refused create journaled or created the pod")
	}
	if code, _, body = call(t, c, "POST", e.http.URL+"/create", testToken, pod); code != 200 {
		t.Fatalf("right token: %d %q", code, body)
	}
	if _, found, _ := e.journal.Get("tok-1"); !found {
		t.Fatal("the create with the right token was not journaled")
	}
	// The scheme is case-insensitive; a token that only starts right is refused.
	if code, _, _ = call(t, c, "POST", e.http.URL+"/status", "", "[]"); code != 401 {
		t.Fatalf("ping without token: %d", code)
	}
	req, _ := http.NewRequest("POST", e.http.URL+"/status", strings.NewReader("[]"))
	req.Header.Set("Authorization", "bearer "+testToken)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("lower-case scheme: %v %v", err, resp)
	}
	if code, _, _ = call(t, c, "POST", e.http.URL+"/status", testToken[:len(testToken)-1], "[]"); code != 401 {
		t.Fatalf("a prefix of the token: %d", code)
	}
	// /healthz is open by default, /readyz and /metrics are not.
	if code, _, body = call(t, c, "GET", e.http.URL+"/healthz", "", ""); code != 200 {
		t.Fatalf("open /healthz without token: %d %q", code, body)
	}
	if code, _, _ = call(t, c, "GET", e.http.URL+"/readyz", "", ""); code != 401 {
		t.Fatalf("/readyz without token: %d", code)
	}
	// A path that is no route is refused before it is told apart: nothing about the API leaks.
	if code, _, _ = call(t, c, "GET", e.http.URL+"/nothing", "", ""); code != 401 {
		t.Fatalf("an unknown path without token: %d", code)
	}

	// Rotation without a restart: the new token is added, then the old one removed.
	writeSecret(t, filepath.Dir(tokens), "tokens", testToken+"\n"+testToken2+"\n", 0o600)
	for _, tok := range []string{testToken, testToken2} {
		if code, _, body = call(t, c, "POST", e.http.URL+"/status", tok, "[]"); code != 200 {
			t.Fatalf("during the rotation, %s…: %d %q", tok[:6], code, body)
		}
	}
	writeSecret(t, filepath.Dir(tokens), "tokens", testToken2+"\n", 0o600)
	if code, _, _ = call(t, c, "POST", e.http.URL+"/status", testToken, "[]"); code != 401 {
		t.Fatalf("the removed token: %d", code)
	}
	if code, _, _ = call(t, c, "POST", e.http.URL+"/status", testToken2, "[]"); code != 200 {
		t.Fatalf("the new token: %d", code)
	}
	// A token file made readable by others accepts no token until it is fixed.
	os.Chmod(tokens, 0o644)
	if code, _, _ = call(t, c, "POST", e.http.URL+"/status", testToken2, "[]"); code != 401 {
		t.Fatalf("token file readable by others: %d", code)
	}
}

func TestOpenPaths(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Access.TokenFile = writeSecret(t, t.TempDir(), "tokens", testToken+"\n", 0o600)
	cfg.Access.OpenPaths = []string{"/readyz"}
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	if code, _, body := call(t, http.DefaultClient, "GET", e.http.URL+"/readyz", "", ""); code != 200 {
		t.Fatalf("/readyz opened: %d %q", code, body)
	}
	// Opening /readyz closed /healthz: the list is the whole set.
	if code, _, _ := call(t, http.DefaultClient, "GET", e.http.URL+"/healthz", "", ""); code != 401 {
		t.Fatalf("/healthz not in open_paths: %d", code)
	}
}

// The network check, unit-tested with client addresses no test can connect from.
func TestAllowNetworksRefusal(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Access.AllowNetworks = []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"}
	a, err := newAccessControl(cfg, quietLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for remote, want := range map[string]int{
		"10.1.2.3:5000": 0, "[2001:db8::1]:80": 0, "192.0.2.7:1": 0, "[::ffff:10.0.0.1]:9": 0,
		"127.0.0.1:4000": 403, "192.0.2.8:1": 403, "[::1]:5": 403, "172.17.0.1:33000": 403, "garbage": 403,
	} {
		r := httptest.NewRequest("GET", "/status", nil)
		r.RemoteAddr = remote
		if msg, code := a.refusal(r); code != want {
			t.Errorf("%s: %d %q, want %d", remote, code, msg, want)
		} else if code != 0 && !strings.Contains(msg, "access.allow_networks") {
			t.Errorf("%s: %q does not name the key", remote, msg)
		}
	}
}

// serveTest runs Serve (and ServeOps when opsAddr is set) and returns the listeners' addresses.
func serveTest(t *testing.T, e *testEnv, opsAddr string) (api []net.Addr, ops net.Addr) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 2)
	addrs := make(chan []net.Addr, 1)
	go func() { served <- e.srv.Serve(ctx, func(a []net.Addr) { addrs <- a }) }()
	select {
	case api = <-addrs:
	case err := <-served:
		cancel()
		t.Fatal(err)
	}
	if opsAddr != "" {
		opsCh := make(chan net.Addr, 1)
		go func() { served <- e.srv.ServeOps(ctx, opsAddr, func(a net.Addr) { opsCh <- a }) }()
		select {
		case ops = <-opsCh:
		case err := <-served:
			cancel()
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		cancel()
		<-served
		if opsAddr != "" {
			<-served
		}
	})
	return api, ops
}

// A real connection from a network that is not allowed: 127.0.0.2 is loopback too, but not 127.0.0.1/32.
func TestAllowNetworksConnection(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Listen.TCP = "127.0.0.2:0"
	cfg.Access.AllowNetworks = []string{"127.0.0.1/32"}
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	api, ops := serveTest(t, e, "127.0.0.2:0")
	dialFrom := func(src string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	for _, u := range []string{"http://" + api[0].String() + "/status", "http://" + ops.String() + "/healthz", "http://" + ops.String() + "/metrics"} {
		code, _, body := call(t, dialFrom("127.0.0.2"), "GET", u, "", "")
		if code != 403 {
			t.Fatalf("%s from 127.0.0.2: %d %q", u, code, body)
		}
		oneSentence(t, body, "127.0.0.2")
		// The same listener answers a client of the allowed network.
		if code, _, body = call(t, dialFrom("127.0.0.1"), "GET", u, "", ""); code == 403 {
			t.Fatalf("%s from 127.0.0.1: %d %q", u, code, body)
		}
	}
}

func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Listen.TCP = "127.0.0.1:0"
	cfg.Listen.TLS = TLSConfig{CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile}
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	api, _ := serveTest(t, e, "")
	base := "https://" + api[0].String()
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool, Certificates: certs}}}
	}
	code, _, body := call(t, client(), "POST", base+"/status", "", "[]")
	if code != 403 {
		t.Fatalf("no client certificate: %d %q", code, body)
	}
	oneSentence(t, body, "listen.tls.client_ca_file")
	if code, _, body = call(t, client(), "GET", base+"/healthz", "", ""); code != 200 {
		t.Fatalf("open /healthz without a client certificate: %d %q", code, body)
	}
	if code, _, body = call(t, client(pki.client), "POST", base+"/status", "", "[]"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("with the client certificate: %d %q", code, body)
	}
	// A certificate of another CA, sent though the server names only its own CA, fails the handshake.
	rogue := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pki.rogue, nil }}}}
	req, _ := http.NewRequest("POST", base+"/status", strings.NewReader("[]"))
	if resp, err := rogue.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a certificate of another CA was accepted: %d", resp.StatusCode)
	}
	// Plain HTTP on the TLS port gets no API.
	if code, _, _ = call(t, http.DefaultClient, "POST", "http://"+api[0].String()+"/status", "", "[]"); code != 400 {
		t.Fatalf("plain HTTP to the TLS listener: %d", code)
	}
}

// socketDir is a fresh directory every user can enter, so that only the socket's own mode stops nobody.
func socketDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runAsNobody runs curl as uid/gid 65534 against the socket and returns its HTTP status ("000" when it
// could not connect) and its error output.
func runAsNobody(t *testing.T, sock, path, body string) (string, string) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (deploy/lab/lab.sh up installs it)")
	}
	cmd := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", sock,
		"-H", "Content-Type: application/json", "--data-binary", body, "http://dispatcher"+path)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	return string(out), stderr.String()
}

// The socket is 0660 with the configured group even under umask 000, and nobody, who is not in the group,
// can neither connect nor create a pod; in the group, the same nobody can (the test can fail).
func TestUnixSocketPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a client as nobody and give the socket another group")
	}
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	pod := func(uid string) string {
		return `{"pod": {"metadata": {"uid": "` + uid + `", "name": "p", "namespace": "default"}, "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}`
	}
	for _, tc := range []struct {
		group   string
		wantGID uint32
		allowed bool
	}{{"", 0, false}, {"nogroup", 65534, true}} {
		t.Run("group="+tc.group, func(t *testing.T) {
			dir := socketDir(t)
			sock := filepath.Join(dir, "api.sock")
			cfg := testConfig(t, tempDir(t), "alpha")
			cfg.Listen = ListenConfig{Unix: sock, UnixMode: 0o660, UnixGroup: tc.group}
			mem := newMem("alpha")
			e := startEnv(t, cfg, map[string]*memBackend{"alpha": mem})
			serveTest(t, e, "")
			fi, err := os.Stat(sock)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != tc.wantGID {
				t.Fatalf("socket %v gid %d, want 0660 gid %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid, tc.wantGID)
			}
			// Nothing is left of where it was made.
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Fatalf("the socket's directory holds %v", ents)
			}
			code, stderr := runAsNobody(t, sock, "/create", pod("nobody-1"))
			_, journaled, _ := e.journal.Get("nobody-1")
			if tc.allowed {
				if code != "200" || !journaled {
					t.Fatalf("nobody in the socket's group: %q %s (journaled %v)", code, stderr, journaled)
				}
				return
			}
			// curl says "(7) ... Couldn't connect to server" for the EACCES of connect(2).
			if code != "000" || !strings.Contains(stderr, "(7)") || journaled || mem.createCount() != 0 {
				t.Fatalf("nobody outside the socket's group: %q %s (journaled %v)", code, stderr, journaled)
			}
		})
	}
}

// Requests over the unix socket need no token: its mode and group are its access control.
func TestUnixSocketNeedsNoToken(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Listen = ListenConfig{TCP: "127.0.0.1:0", Unix: sock, UnixMode: 0o600}
	cfg.Access.TokenFile = writeSecret(t, dir, "tokens", testToken+"\n", 0o600)
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	api, _ := serveTest(t, e, "")
	unix := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	if code, _, body := call(t, unix, "POST", "http://unix/status", "", "[]"); code != 200 {
		t.Fatalf("unix socket without token: %d %q", code, body)
	}
	if code, _, _ := call(t, http.DefaultClient, "POST", "http://"+api[0].String()+"/status", "", "[]"); code != 401 {
		t.Fatalf("TCP without token: %d", code)
	}
}

func TestUnixSocketDirectory(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "open")
	sticky := filepath.Join(base, "sticky")
	os.Mkdir(open, 0o755)
	os.Mkdir(sticky, 0o755)
	os.Chmod(open, 0o777)
	os.Chmod(sticky, 0o777|os.ModeSticky)
	for _, tc := range []struct {
		dir  string
		want []string // nil: served
	}{
		{filepath.Join(base, "missing"), []string{"listen.unix", "does not exist"}},
		{open, []string{"listen.unix", "0777", "sticky", "their own socket"}},
		{sticky, nil},
	} {
		l, err := listenUnix(ListenConfig{Unix: filepath.Join(tc.dir, "api.sock"), UnixMode: 0o660})
		if tc.want == nil {
			if err != nil {
				t.Fatalf("%s: %v", tc.dir, err)
			}
			l.Close()
			continue
		}
		if err == nil {
			l.Close()
			t.Fatalf("%s: socket made", tc.dir)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.dir, err, w)
			}
		}
	}
}

func (m *memBackend) createCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.creates
}

// The metrics listener asks for the same token outside access.open_paths: a scrape needs it unless /metrics
// is opened.
func TestOpsListenerToken(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	cfg.Listen.TCP = "127.0.0.1:0"
	cfg.Access.TokenFile = writeSecret(t, t.TempDir(), "tokens", testToken+"\n", 0o600)
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	_, ops := serveTest(t, e, "127.0.0.1:0")
	base := "http://" + ops.String()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 401, "/metrics": 401, "/create": 401} {
		if code, _, body := call(t, http.DefaultClient, "GET", base+path, "", ""); code != want {
			t.Errorf("%s without token: %d %q, want %d", path, code, body, want)
		}
	}
	// With the token, /readyz answers; /create is still no route of the metrics listener.
	for path, want := range map[string]int{"/readyz": 200, "/create": 404} {
		if code, _, body := call(t, http.DefaultClient, "GET", base+path, testToken, ""); code != want {
			t.Errorf("%s with the token: %d %q, want %d", path, code, body, want)
		}
	}
}
