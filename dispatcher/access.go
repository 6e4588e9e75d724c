package dispatcher

// Access control, in one place for every listener and route the dispatcher serves.
//
// The unix socket's access control is its file mode and group (listenUnix): whoever can connect to it may use
// the whole API, because interLink sends no credentials. The TCP listeners (listen.tcp, metrics.listen) have
// none of that, and on loopback every local process, SLURM jobs and host-network pods included, can reach
// them. So every request that arrives over TCP goes through accessControl.middleware: the client's network
// first (access.allow_networks, 403), then, outside access.open_paths, the client certificate when
// listen.tls.client_ca_file is set (403) and the bearer token when access.token_file is set (401).

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// openablePaths are the routes access.open_paths may name: the probes and the scrape, which change nothing.
var openablePaths = opsPaths

// minTokenLen keeps tokens out of reach of guessing: nothing limits the rate of tries on loopback.
const minTokenLen = 16

// finishAccess resolves and checks the listen.unix_*, listen.tls.* and access.* keys, for Config.finish.
func (c *Config) finishAccess(baseDir string) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config key %s: %s", key, fmt.Sprintf(format, args...)))
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(baseDir, *p)
		}
	}
	abs(&c.Listen.TLS.CertFile)
	abs(&c.Listen.TLS.KeyFile)
	abs(&c.Listen.TLS.ClientCAFile)
	abs(&c.Access.TokenFile)

	if strings.HasPrefix(c.Listen.Unix, "@") {
		bad("listen.unix", "%s is an abstract socket, which has no file mode and belongs to the network namespace, so every host-network pod could connect; use a path", c.Listen.Unix)
	}
	if c.Listen.UnixMode&0o007 != 0 {
		bad("listen.unix_mode", "%s lets every local user connect, and the socket has no other access control; use 0660 with listen.unix_group", c.Listen.UnixMode)
	} else if c.Listen.UnixMode&0o660 == 0 {
		bad("listen.unix_mode", "%s lets no one but root connect; use 0660 with listen.unix_group", c.Listen.UnixMode)
	}
	if _, err := socketGroup(c.Listen.UnixGroup); err != nil {
		bad("listen.unix_group", "%v", err)
	}
	if _, err := parseNetworks(c.Access.AllowNetworks); err != nil {
		bad("access.allow_networks", "%v", err)
	}
	for i, p := range c.Access.OpenPaths {
		if !slices.Contains(openablePaths, p) {
			bad(fmt.Sprintf("access.open_paths[%d]", i), "%q cannot be opened; only %s can be served without credentials", p, strings.Join(openablePaths, ", "))
		}
	}
	if c.Access.TokenFile != "" {
		if _, err := readTokens(c.Access.TokenFile); err != nil {
			bad("access.token_file", "%v", err)
		}
	}
	t := c.Listen.TLS
	if t != (TLSConfig{}) && c.Listen.TCP == "" {
		bad("listen.tls", "is set but listen.tcp is not; TLS applies to listen.tcp only")
	}
	switch {
	case t.CertFile == "" && t.KeyFile == "" && t.ClientCAFile != "":
		bad("listen.tls.client_ca_file", "needs listen.tls.cert_file and key_file: client certificates are asked for over TLS only")
	case (t.CertFile == "") != (t.KeyFile == ""):
		bad("listen.tls", "set both cert_file and key_file, or neither")
	case t.CertFile != "":
		if err := checkSecretFile(t.KeyFile); err != nil {
			bad("listen.tls.key_file", "%v", err)
		} else if _, err := serverTLS(t); err != nil {
			bad("listen.tls", "%v", err)
		}
	}
	return errs
}

// parseNetworks reads CIDRs (a bare address is one host); at least one is needed.
func parseNetworks(cidrs []string) ([]netip.Prefix, error) {
	if len(cidrs) == 0 {
		return nil, errors.New("list at least one client network, e.g. 127.0.0.0/8 (0.0.0.0/0 and ::/0 allow every client)")
	}
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a network like 10.0.0.0/8 or an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// checkSecretFile refuses a secret other users can read or anyone but its owner can change: such a file
// protects nothing.
func checkSecretFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o026 != 0 {
		return fmt.Errorf("%s has mode %04o: other users can read it or others can change it; chmod 0600 (or 0640 for a group)", path, perm)
	}
	return nil
}

// readTokens reads a token file: one token a line, blank lines and lines starting with # ignored. It
// returns the tokens' SHA-256 sums, which are what requests are compared against.
func readTokens(path string) ([][sha256.Size]byte, error) {
	if err := checkSecretFile(path); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	var out [][sha256.Size]byte
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < minTokenLen || strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("%s line %d: a token is at least %d characters without spaces (e.g. openssl rand -hex 32)", path, i+1, minTokenLen)
		}
		out = append(out, sha256.Sum256([]byte(line)))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no token; write one a line (e.g. openssl rand -hex 32)", path)
	}
	return out, nil
}

// tokenFile is access.token_file, read again whenever it changes, so that a token can be added and the old
// one removed (a rotation) without a restart.
type tokenFile struct {
	path string
	log  *slog.Logger

	mu     sync.Mutex
	stamp  string // size, mtime, mode and inode the tokens were read at
	tokens [][sha256.Size]byte
	err    error
}

func newTokenFile(path string, log *slog.Logger) (*tokenFile, error) {
	f := &tokenFile{path: path, log: log}
	if _, err := f.current(); err != nil {
		return nil, fmt.Errorf("config key access.token_file: %w", err)
	}
	return f, nil
}

// current is the token sums as the file holds them now. A file that became unreadable, insecure or empty
// accepts no token until it is fixed: what the operator meant is then unknown, and refusing is the safe side.
func (f *tokenFile) current() ([][sha256.Size]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	stamp := "missing"
	if fi, err := os.Stat(f.path); err == nil {
		stamp = fmt.Sprintf("%d %d %v", fi.Size(), fi.ModTime().UnixNano(), fi.Mode())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			stamp += fmt.Sprintf(" %d", st.Ino)
		}
	}
	if stamp != f.stamp {
		f.stamp = stamp
		f.tokens, f.err = readTokens(f.path)
		if f.err != nil {
			f.log.Error("access.token_file cannot be used: no bearer token is accepted until it is fixed", "err", f.err)
		} else {
			f.log.Info("bearer tokens read", "file", f.path, "tokens", len(f.tokens))
		}
	}
	return f.tokens, f.err
}

// valid reports whether the request's bearer token is one of the file's, comparing in constant time: every
// token is compared, and the sums compared have one length whatever was sent.
func (f *tokenFile) valid(given string) bool {
	tokens, err := f.current()
	if err != nil || given == "" {
		return false
	}
	sum := sha256.Sum256([]byte(given))
	match := 0
	for _, t := range tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	return match == 1
}

// serverTLS is the TLS configuration of listen.tcp. A client certificate is verified when one is sent and
// required by the middleware outside access.open_paths, so that probes of /healthz need none.
func serverTLS(t TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load the certificate %s with the key %s: %v", t.CertFile, t.KeyFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read client_ca_file %s: %v", t.ClientCAFile, errors.Unwrap(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca_file %s holds no PEM certificate", t.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// accessControl is the check every request over TCP goes through; see the top of this file.
type accessControl struct {
	nets        []netip.Prefix
	open        map[string]bool
	tokens      *tokenFile // nil: no token asked for
	requireCert bool
}

func newAccessControl(c Config, log *slog.Logger) (*accessControl, error) {
	nets, err := parseNetworks(c.Access.AllowNetworks)
	if err != nil {
		return nil, fmt.Errorf("config key access.allow_networks: %w", err)
	}
	a := &accessControl{nets: nets, open: map[string]bool{}, requireCert: c.Listen.TLS.ClientCAFile != ""}
	for _, p := range c.Access.OpenPaths {
		a.open[p] = true
	}
	if c.Access.TokenFile != "" {
		if a.tokens, err = newTokenFile(c.Access.TokenFile, log); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// middleware refuses what the listener's access rules do not allow, with one sentence; the request log
// records the refusal with the client's address (never the token).
func (a *accessControl) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && local.Network() == "unix" {
			next.ServeHTTP(w, r) // the socket's mode and group decided who could connect
			return
		}
		if msg, code := a.refusal(r); code != 0 {
			info(r).remote = r.RemoteAddr
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="interlink-dispatcher"`)
			}
			httpError(w, r, code, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refusal is why r is refused and with which status, or code 0.
func (a *accessControl) refusal(r *http.Request) (msg string, code int) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return fmt.Sprintf("the client address %q cannot be read, so it cannot be checked against access.allow_networks", r.RemoteAddr), http.StatusForbidden
	}
	ip := ap.Addr().Unmap()
	if !slices.ContainsFunc(a.nets, func(p netip.Prefix) bool { return p.Contains(ip) }) {
		return fmt.Sprintf("clients from %s are not allowed here: the address is in none of access.allow_networks", ip), http.StatusForbidden
	}
	if a.open[r.URL.Path] {
		return "", 0
	}
	if a.requireCert && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
		return "a client certificate signed by listen.tls.client_ca_file is required for " + r.URL.Path, http.StatusForbidden
	}
	if a.tokens != nil {
		given, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			return "a bearer token is required: send the header Authorization: Bearer <token>, with a token of access.token_file", http.StatusUnauthorized
		}
		if !a.tokens.valid(given) {
			return "the bearer token is not one of access.token_file", http.StatusUnauthorized
		}
	}
	return "", 0
}

// bearerToken is the token of an "Authorization: Bearer <token>" header (the scheme in any case).
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// socketGroup is the gid of listen.unix_group: a group name or a number, "" the process's own group.
func socketGroup(spec string) (int, error) {
	if spec == "" {
		return os.Getgid(), nil
	}
	if gid, err := strconv.Atoi(spec); err == nil {
		if gid < 0 {
			return 0, fmt.Errorf("%d is not a group id", gid)
		}
		return gid, nil
	}
	g, err := user.LookupGroup(spec)
	if err != nil {
		return 0, fmt.Errorf("there is no group %q on this host; create it or give a gid", spec)
	}
	return strconv.Atoi(g.Gid)
}

// checkSocketDir refuses a directory where someone else could replace the socket.
func checkSocketDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("listen.unix: the directory %s does not exist; create it, owned by the dispatcher's user and not writable by others", dir)
	}
	if err != nil {
		return fmt.Errorf("listen.unix: cannot check the directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("listen.unix: %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o002 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("listen.unix: the directory %s is writable by every user (mode %04o) without the sticky bit, so anyone could put their own socket in the dispatcher's place and receive interLink's requests, secrets included; use a directory only the dispatcher's user can write", dir, fi.Mode().Perm())
	}
	return nil
}

// listenUnix listens on listen.unix with the configured mode and group from its first moment: the socket is
// made in a fresh directory only this process can enter, given its mode and group there, and only then
// renamed to its path. (The process's umask is left alone: it is shared with every goroutine, the backends'
// launches among them.)
func listenUnix(lc ListenConfig) (net.Listener, error) {
	path := lc.Unix
	dir := filepath.Dir(path)
	if err := checkSocketDir(dir); err != nil {
		return nil, err
	}
	gid, err := socketGroup(lc.UnixGroup)
	if err != nil {
		return nil, fmt.Errorf("listen.unix_group: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	private, err := os.MkdirTemp(dir, ".s")
	if err != nil {
		return nil, fmt.Errorf("cannot make a private directory beside the unix socket %s (listen.unix): %w", path, err)
	}
	defer os.RemoveAll(private)
	tmp := filepath.Join(private, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("cannot listen on the unix socket %s (listen.unix; its path, and %d characters more while it is made, must fit in 107): %w", path, len(tmp)-len(path), err)
	}
	l.SetUnlinkOnClose(false) // Serve removes the socket at its real path
	if err := os.Chown(tmp, -1, gid); err != nil {
		l.Close()
		return nil, fmt.Errorf("cannot give the unix socket %s the group %d (listen.unix_group): %w", path, gid, err)
	}
	if err := os.Chmod(tmp, os.FileMode(lc.UnixMode)); err != nil {
		l.Close()
		return nil, fmt.Errorf("cannot give the unix socket %s the mode %s (listen.unix_mode): %w", path, lc.UnixMode, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		return nil, fmt.Errorf("cannot move the unix socket into place at %s (listen.unix): %w", path, err)
	}
	return &unixListener{UnixListener: l, addr: &net.UnixAddr{Name: path, Net: "unix"}}, nil
}

// unixListener reports the socket's real path rather than the one it was made at.
type unixListener struct {
	*net.UnixListener
	addr net.Addr
}

func (l *unixListener) Addr() net.Addr { return l.addr }

// listenTCP listens on addr, with TLS when tc is not nil.
func listenTCP(addr, key string, tc *tls.Config) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (%s): %w", addr, key, err)
	}
	if tc != nil {
		l = tls.NewListener(l, tc)
	}
	return l, nil
}
