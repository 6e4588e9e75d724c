package dispatcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

// EnvPrefix starts every environment variable that overrides a config key: the key path upper-cased with
// dots as underscores, e.g. INTERLINK_DISPATCHER_LISTEN_TCP for listen.tcp. A backend's fields are
// INTERLINK_DISPATCHER_BACKENDS_<NAME>_<FIELD> (NAME upper-cased, '-' as '_'; FIELD one of BINARY, ENABLED,
// SHA256, ARGS).
const EnvPrefix = "INTERLINK_DISPATCHER_"

// backendEnvVar is how the dispatcher hands Env to a backend process; a dispatcher that inherits it (started
// from a backend's environment) must not read it as config.
const backendEnvVar = EnvPrefix + "BACKEND_ENV"

// DefaultRoutingAnnotation is the pod annotation that names a pod's backend.
const DefaultRoutingAnnotation = "dispatcher.interlink.eu/backend"

// Config is the dispatcher's whole configuration, as config.yaml spells it.
type Config struct {
	// Instance identifies this dispatcher to its backends, which label everything they make with it.
	// Default: derived from the hostname, so it is stable across restarts.
	Instance    string            `koanf:"instance"`
	DataDir     string            `koanf:"data_dir"` // the journal and the backends' own directories live here
	Listen      ListenConfig      `koanf:"listen"`
	Limits      LimitsConfig      `koanf:"limits"`
	Timeouts    TimeoutsConfig    `koanf:"timeouts"`
	Routing     RoutingConfig     `koanf:"routing"`
	Supervision SupervisionConfig `koanf:"supervision"`
	Log         LogConfig         `koanf:"log"`
	Metrics     MetricsConfig     `koanf:"metrics"`
	Access      AccessConfig      `koanf:"access"`
	Backends    []BackendConfig   `koanf:"backends"`
}

// ListenConfig says where the interLink API is served; at least one of the two is set.
type ListenConfig struct {
	TCP  string `koanf:"tcp"`  // host:port; "" disables TCP
	Unix string `koanf:"unix"` // socket path; "" disables the unix socket
	// UnixMode and UnixGroup are the socket's permissions: who may connect to it is all the access control
	// the socket has. UnixGroup is a group name or gid; "" is the process's own group.
	UnixMode  FileMode  `koanf:"unix_mode"`
	UnixGroup string    `koanf:"unix_group"`
	TLS       TLSConfig `koanf:"tls"` // TLS, and with a client CA mTLS, on listen.tcp
}

// TLSConfig makes listen.tcp serve HTTPS; with ClientCAFile, every request outside access.open_paths must
// come with a client certificate that CA signed.
type TLSConfig struct {
	CertFile     string `koanf:"cert_file"`
	KeyFile      string `koanf:"key_file"`
	ClientCAFile string `koanf:"client_ca_file"`
}

// AccessConfig says who may use the TCP listeners (listen.tcp and metrics.listen); see access.go.
type AccessConfig struct {
	// AllowNetworks are the client networks (CIDRs) a TCP connection may come from; others get 403.
	AllowNetworks []string `koanf:"allow_networks"`
	// TokenFile, if set, holds the bearer tokens accepted on TCP, one a line (several during a rotation).
	TokenFile string `koanf:"token_file"`
	// OpenPaths are served on TCP without a token or client certificate: some of /healthz, /readyz, /metrics.
	OpenPaths []string `koanf:"open_paths"`
}

// FileMode is a permission mode written in octal as a string, e.g. "0660".
type FileMode uint32

// String is the mode as config.yaml writes it.
func (m FileMode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// LimitsConfig bounds what a request may carry.
type LimitsConfig struct {
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// MaxGracePeriod bounds every grace period a pod carries (deletion, termination, probes): a /delete holds
	// its connection for the grace period plus timeouts.delete, and Kubernetes itself sets no maximum.
	MaxGracePeriod time.Duration `koanf:"max_grace_period"`
	// MaxConnectionsPerClient bounds the connections one client (one remote IP; the unix socket counts as one
	// client) may hold open on a listener; more are answered 503 and closed.
	MaxConnectionsPerClient int `koanf:"max_connections_per_client"`
}

// TimeoutsConfig bounds every call the dispatcher makes.
type TimeoutsConfig struct {
	Create   time.Duration `koanf:"create"`   // budget of a backend's Create; interLink waits 120 s at most
	Status   time.Duration `koanf:"status"`   // deadline of each backend's Status batch
	Ping     time.Duration `koanf:"ping"`     // deadline of each backend's Capacity during a ping
	Delete   time.Duration `koanf:"delete"`   // added to the pod's grace period for a backend's Delete
	List     time.Duration `koanf:"list"`     // deadline of List during reconciliation
	Shutdown time.Duration `koanf:"shutdown"` // how long in-flight requests may finish after SIGTERM
	// Read bounds the arrival of a whole request, headers and body; a slow body is cut there.
	Read time.Duration `koanf:"read"`
	// Write bounds an answer: a request's own budget (create, delete's grace, status) is added to it, and a log
	// gets it for each write, so that a followed log lasts as long as it has lines to send.
	Write time.Duration `koanf:"write"`
	// Idle bounds how long a kept-alive connection waits for its next request.
	Idle time.Duration `koanf:"idle"`
}

// RoutingConfig picks a backend for a pod: the annotation, then the first matching rule, then Default.
type RoutingConfig struct {
	Annotation string `koanf:"annotation"`
	Default    string `koanf:"default"`
	Rules      []Rule `koanf:"rules"`
}

// Rule sends the pods it matches to Backend.
type Rule struct {
	Name    string `koanf:"name"`
	Backend string `koanf:"backend"`
	Match   Match  `koanf:"match"`
}

// Match is a rule's condition: every field set must hold (an empty Match matches every pod). Within
// Namespaces and Resources any one entry suffices; within the maps every entry must hold. A map value "*"
// only requires the key to be present.
type Match struct {
	Namespaces   []string          `koanf:"namespaces"`
	Labels       map[string]string `koanf:"labels"`
	Annotations  map[string]string `koanf:"annotations"`
	NodeSelector map[string]string `koanf:"node_selector"`
	// Resources are resource names (e.g. nvidia.com/gpu) of which any container requests or limits more than 0.
	Resources []string `koanf:"resources"`
}

// SupervisionConfig shapes how backend processes are restarted.
type SupervisionConfig struct {
	BackoffInitial time.Duration `koanf:"backoff_initial"` // first wait before a restart
	BackoffMax     time.Duration `koanf:"backoff_max"`     // the cap of the doubling wait
	// StableAfter is how long a backend must stay up for the backoff to start over from BackoffInitial.
	StableAfter  time.Duration `koanf:"stable_after"`
	StartTimeout time.Duration `koanf:"start_timeout"` // launch, handshake and Describe
	// HealthInterval is how often each backend that is up is asked for its Capacity (within timeouts.ping),
	// which reaches its engine: a failure marks it degraded in /readyz until an answer comes again.
	HealthInterval time.Duration `koanf:"health_interval"`
}

// LogConfig shapes the dispatcher's own log.
type LogConfig struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // text or json
}

// MetricsConfig shapes the Prometheus endpoint. /metrics is always served on the API listeners.
type MetricsConfig struct {
	// Listen is a separate host:port serving /metrics, /healthz and /readyz only; "" serves none.
	Listen string `koanf:"listen"`
	// BackendTimeout bounds the gathering of each backend's own metrics during a scrape; a backend that
	// misses it contributes nothing to that scrape.
	BackendTimeout time.Duration `koanf:"backend_timeout"`
}

// BackendConfig is one backend stanza.
type BackendConfig struct {
	Name    string   `koanf:"name"`
	Binary  string   `koanf:"binary"` // relative paths are taken from the config file's directory
	Args    []string `koanf:"args"`
	Enabled *bool    `koanf:"enabled"` // default true
	SHA256  string   `koanf:"sha256"`  // optional hex checksum the binary must match
	// Config is the backend's own section, handed to it as JSON in backend.Env.Config.
	Config map[string]any `koanf:"config"`
	// Policy is what its pods may take from the host (host paths, privileged, host network, capabilities);
	// unset allows none of it. See policy.go.
	Policy PolicyConfig `koanf:"policy"`
}

// IsEnabled reports whether the backend is to be started (the default).
func (b BackendConfig) IsEnabled() bool { return b.Enabled == nil || *b.Enabled }

// DefaultConfig is the configuration before the file, the environment and the flags apply.
func DefaultConfig() Config {
	c := Config{
		DataDir: "/var/lib/interlink-dispatcher",
		Listen:  ListenConfig{TCP: "127.0.0.1:4000"},
		Limits:  LimitsConfig{MaxBodyBytes: 10 << 20, MaxGracePeriod: time.Hour, MaxConnectionsPerClient: 1024},
		Timeouts: TimeoutsConfig{
			Create:   30 * time.Second,
			Status:   10 * time.Second,
			Ping:     5 * time.Second,
			Delete:   30 * time.Second,
			List:     30 * time.Second,
			Shutdown: 30 * time.Second,
			Read:     time.Minute,
			Write:    time.Minute,
			Idle:     2 * time.Minute,
		},
		Routing: RoutingConfig{Annotation: DefaultRoutingAnnotation},
		Supervision: SupervisionConfig{
			BackoffInitial: time.Second,
			BackoffMax:     time.Minute,
			StableAfter:    time.Minute,
			StartTimeout:   time.Minute,
			HealthInterval: 10 * time.Second,
		},
		Log:     LogConfig{Level: "info", Format: "text"},
		Metrics: MetricsConfig{BackendTimeout: 2 * time.Second},
		Access:  AccessConfig{AllowNetworks: []string{"127.0.0.0/8", "::1/128"}, OpenPaths: []string{"/healthz"}},
	}
	c.Listen.UnixMode = 0o660
	return c
}

// LoadOptions say where LoadConfig reads from.
type LoadOptions struct {
	Path    string   // the YAML file; "" reads none
	Environ []string // os.Environ() form; nil reads none
	Listen  string   // the --listen flag: host:port, or unix:///path or /path for a socket; "" leaves it
}

// LoadConfig reads the file, then the environment overrides, then the flags, and validates the result. Every
// problem is reported at once, one a line: a value of the wrong type (a decoding error) does not hide a
// value that fails its check, nor a bad environment variable a bad key of the file. Each line names the key
// path (or environment variable) and the reason.
func LoadConfig(o LoadOptions) (Config, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(defaultsMap(), "."), nil); err != nil {
		return Config{}, err
	}
	baseDir, err := os.Getwd()
	if err != nil {
		baseDir = "."
	}
	if o.Path != "" {
		if _, err := os.Stat(o.Path); err != nil {
			return Config{}, fmt.Errorf("cannot read the config file %s: %w; pass --config PATH", o.Path, err)
		}
		if err := k.Load(file.Provider(o.Path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("config file %s is not valid YAML: %w", o.Path, err)
		}
		abs, err := filepath.Abs(filepath.Dir(o.Path))
		if err != nil {
			return Config{}, fmt.Errorf("cannot resolve the directory of %s: %w", o.Path, err)
		}
		baseDir = abs
	}

	var problems []error
	ev := newEnvReader()
	if o.Environ != nil {
		p := env.Provider(".", env.Opt{Prefix: EnvPrefix, TransformFunc: ev.transform, EnvironFunc: func() []string { return o.Environ }})
		if err := k.Load(p, nil); err != nil {
			return Config{}, err
		}
		problems = append(problems, ev.errs...)
	}
	if o.Listen != "" {
		key, val := "listen.tcp", o.Listen
		if strings.HasPrefix(val, "unix://") || strings.HasPrefix(val, "/") {
			key, val = "listen.unix", strings.TrimPrefix(val, "unix://")
		}
		if err := k.Load(confmap.Provider(map[string]any{key: val}, "."), nil); err != nil {
			return Config{}, err
		}
	}

	var cfg Config
	dc := &mapstructure.DecoderConfig{
		DecodeHook:  mapstructure.ComposeDecodeHookFunc(durationHook, fileModeHook),
		ErrorUnused: true,
		TagName:     "koanf",
	}
	// mapstructure decodes every other key when one fails: the checks below still run on them.
	var failed []string // the key paths whose value could not be decoded
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: dc}); err != nil {
		for _, line := range cleanDecodeError(err) {
			problems = append(problems, errors.New(line.msg))
			failed = append(failed, line.key)
		}
	}
	if err := ev.applyBackends(&cfg); err != nil {
		problems = append(problems, err)
	}
	if err := cfg.finish(baseDir); err != nil {
		for _, e := range splitJoined(err) {
			if !underAny(configKeyOf(e), failed) { // a value that did not decode is reported once, for that
				problems = append(problems, e)
			}
		}
	}
	if len(problems) > 0 {
		return Config{}, errors.Join(problems...)
	}
	return cfg, nil
}

// splitJoined is the errors an errors.Join made, or err alone.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

var configKeyRE = regexp.MustCompile(`^config key ([^ :]+)`)

// configKeyOf is the key path an error of finish names ("config key <path>: ..."), or "".
func configKeyOf(err error) string {
	if m := configKeyRE.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return ""
}

// underAny reports whether key is one of paths or inside one of them.
func underAny(key string, paths []string) bool {
	if key == "" {
		return false
	}
	for _, p := range paths {
		if p != "" && (key == p || strings.HasPrefix(key, p+".") || strings.HasPrefix(key, p+"[")) {
			return true
		}
	}
	return false
}

// durationHook reads a duration as shared/settings does, so that every duration of the dispatcher's config
// and its backends' says the same thing when it is wrong: the whole value quoted, and one written as it
// should be. A bare number is refused, which mapstructure would read as nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(time.Duration(0)) || from == to {
		return data, nil
	}
	str, ok := data.(string)
	if !ok {
		return nil, fmt.Errorf("%v is not a duration: write it with a unit, like \"30s\" or \"2m\"", data)
	}
	return settings.ParseDuration(str)
}

// fileModeHook reads a FileMode from an octal string. A YAML number is refused: 0660 unquoted is read by
// YAML as the decimal 432, and 660 as six hundred sixty, neither what was meant.
func fileModeHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(FileMode(0)) || from == to {
		return data, nil
	}
	str, ok := data.(string)
	if !ok {
		return nil, fmt.Errorf("%v is not a quoted octal mode: write it as a string, like \"0660\"", data)
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(str, "0o"), 8, 32)
	if err != nil || n > 0o777 {
		return nil, fmt.Errorf("%q is not an octal permission mode like \"0660\"", str)
	}
	return FileMode(n), nil
}

var (
	invalidKeysRE = regexp.MustCompile(`^'([^']*)' has invalid keys: (.*)$`)
	typeRE        = regexp.MustCompile(`^'([^']*)' expected type '([^']*)', got unconvertible type '([^']*)'.*$`)
	keyMsgRE      = regexp.MustCompile(`^'([^']*)' (.*)$`)
	hookRE        = regexp.MustCompile(`^error decoding '([^']*)': (.*)$`)
)

// decodeProblem is one line of a decoding error: the key path at fault and the message.
type decodeProblem struct{ key, msg string }

// cleanDecodeError rewrites mapstructure's messages as "config key <path>: <reason>", one per problem. An
// unknown key that is another spelling of a known one (listen.unixMode) says how the key is spelled.
func cleanDecodeError(err error) []decodeProblem {
	var out []decodeProblem
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
		if line == "" || strings.HasPrefix(line, "decoding failed") {
			continue
		}
		if m := invalidKeysRE.FindStringSubmatch(line); m != nil {
			for _, k := range strings.Split(m[2], ", ") {
				path := k
				if m[1] != "" {
					path = m[1] + "." + k
				}
				msg := fmt.Sprintf("config key %s is not a known key (check its spelling and indentation)", path)
				if known := spelledAs(m[1], k); known != "" {
					msg = fmt.Sprintf("config key %s is not a known key; the key is spelled %s", path, known)
				}
				out = append(out, decodeProblem{path, msg})
			}
			continue
		}
		if m := typeRE.FindStringSubmatch(line); m != nil {
			out = append(out, decodeProblem{m[1], fmt.Sprintf("config key %s: expected %s, got %s", m[1], m[2], m[3])})
			continue
		}
		if m := hookRE.FindStringSubmatch(line); m != nil {
			out = append(out, decodeProblem{m[1], fmt.Sprintf("config key %s: %s", m[1], m[2])})
			continue
		}
		if m := keyMsgRE.FindStringSubmatch(line); m != nil {
			out = append(out, decodeProblem{m[1], fmt.Sprintf("config key %s: %s", m[1], m[2])})
			continue
		}
		out = append(out, decodeProblem{"", line})
	}
	return out
}

// spelledAs is the known key of the section at path (a mapstructure path: "listen", "backends[0].policy")
// that key is another spelling of (unixMode, unix-mode, UnixMode for unix_mode), or "".
func spelledAs(path, key string) string {
	t := reflect.TypeOf(Config{})
	if path != "" {
		for _, part := range strings.Split(regexp.MustCompile(`\[\d+\]`).ReplaceAllString(path, ""), ".") {
			f, ok := fieldByKey(t, part)
			if !ok {
				return ""
			}
			t = f
			for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer || t.Kind() == reflect.Map {
				t = t.Elem()
			}
			if t.Kind() != reflect.Struct {
				return ""
			}
		}
	}
	norm := func(s string) string { return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s)) }
	for i := 0; i < t.NumField(); i++ {
		if k := t.Field(i).Tag.Get("koanf"); k != "" && norm(k) == norm(key) {
			return k
		}
	}
	return ""
}

func fieldByKey(t reflect.Type, key string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("koanf") == key {
			return t.Field(i).Type, true
		}
	}
	return nil, false
}

// defaultsMap flattens DefaultConfig into koanf keys, so the file only needs what differs.
func defaultsMap() map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			key := prefix + t.Field(i).Tag.Get("koanf")
			f := v.Field(i)
			switch {
			case f.Kind() == reflect.Struct:
				walk(key+".", f)
			case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String && !f.IsNil():
				out[key] = slices.Clone(f.Interface().([]string)) // a list set in the file replaces it whole
			case f.Kind() == reflect.Slice || f.Kind() == reflect.Map || f.Kind() == reflect.Pointer:
				// other lists and maps have no defaults beyond empty
			case f.Type() == reflect.TypeOf(time.Duration(0)):
				out[key] = time.Duration(f.Int()).String()
			default:
				out[key] = f.Interface()
			}
		}
	}
	walk("", reflect.ValueOf(DefaultConfig()))
	return out
}

// envKeys maps every scalar key path to its type, for environment overrides.
func envKeys() map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			key := prefix + f.Tag.Get("koanf")
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(key+".", f.Type)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() != reflect.String:
			case f.Type.Kind() == reflect.Map:
			default:
				out[key] = f.Type
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return out
}

// envReader turns INTERLINK_DISPATCHER_* variables into typed koanf values, collecting errors koanf's
// provider cannot return, and keeps backend overrides aside (koanf cannot merge into a list element).
type envReader struct {
	keys     map[string]string // env suffix → key path
	types    map[string]reflect.Type
	backends map[string]map[string]string // env name part → field → raw value
	errs     []error
}

func newEnvReader() *envReader {
	r := &envReader{keys: map[string]string{}, types: envKeys(), backends: map[string]map[string]string{}}
	for key := range r.types {
		r.keys[envName(key)] = key
	}
	return r
}

func envName(key string) string { return strings.ToUpper(strings.ReplaceAll(key, ".", "_")) }

var backendFields = []string{"BINARY", "ENABLED", "SHA256", "ARGS"}

func (r *envReader) transform(name, value string) (string, any) {
	if name == backendEnvVar {
		return "", nil
	}
	suffix := strings.TrimPrefix(name, EnvPrefix)
	if key, ok := r.keys[suffix]; ok {
		v, err := parseEnvValue(r.types[key], value)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("environment variable %s (config key %s): %w", name, key, err))
			return "", nil
		}
		return key, v
	}
	if rest, ok := strings.CutPrefix(suffix, "BACKENDS_"); ok {
		for _, f := range backendFields {
			if b, ok := strings.CutSuffix(rest, "_"+f); ok && b != "" {
				if r.backends[b] == nil {
					r.backends[b] = map[string]string{}
				}
				r.backends[b][f] = value
				return "", nil
			}
		}
	}
	r.errs = append(r.errs, fmt.Errorf("environment variable %s is not a config key; the known ones are %s followed by the key path in capitals with '_' for '.', e.g. %sLISTEN_TCP, or %sBACKENDS_<NAME>_<%s>",
		name, EnvPrefix, EnvPrefix, EnvPrefix, strings.Join(backendFields, "|")))
	return "", nil
}

func parseEnvValue(t reflect.Type, value string) (any, error) {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		if _, err := settings.ParseDuration(value); err != nil {
			return nil, err
		}
		return value, nil
	case t.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", value)
		}
		return b, nil
	case t.Kind() == reflect.Int64 || t.Kind() == reflect.Int:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", value)
		}
		return n, nil
	case t.Kind() == reflect.Slice:
		return splitList(value), nil
	default:
		return value, nil
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (r *envReader) applyBackends(cfg *Config) error {
	names := make([]string, 0, len(r.backends))
	for n := range r.backends {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, envPart := range names {
		i := slices.IndexFunc(cfg.Backends, func(b BackendConfig) bool {
			return strings.ToUpper(strings.ReplaceAll(b.Name, "-", "_")) == envPart
		})
		if i < 0 {
			return fmt.Errorf("environment variables %sBACKENDS_%s_* name no backend of the config file; add a backends entry named %q first",
				EnvPrefix, envPart, strings.ToLower(strings.ReplaceAll(envPart, "_", "-")))
		}
		b := &cfg.Backends[i]
		for field, value := range r.backends[envPart] {
			name := EnvPrefix + "BACKENDS_" + envPart + "_" + field
			switch field {
			case "BINARY":
				b.Binary = value
			case "SHA256":
				b.SHA256 = value
			case "ARGS":
				b.Args = splitList(value)
			case "ENABLED":
				v, err := strconv.ParseBool(value)
				if err != nil {
					return fmt.Errorf("environment variable %s: %q is not true or false", name, value)
				}
				b.Enabled = &v
			}
		}
	}
	return nil
}

var (
	backendNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	sha256RE      = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// finish fills derived defaults and checks everything that can be checked before starting.
func (c *Config) finish(baseDir string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config key %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Instance == "" {
		c.Instance = defaultInstance()
	}
	if c.DataDir == "" {
		bad("data_dir", "must name a directory for the journal")
	} else if !filepath.IsAbs(c.DataDir) {
		c.DataDir = filepath.Join(baseDir, c.DataDir)
	}
	if c.Listen.TCP == "" && c.Listen.Unix == "" {
		bad("listen", "set listen.tcp (host:port) or listen.unix (a socket path), or both")
	}
	errs = append(errs, c.finishAccess(baseDir)...)
	if c.Metrics.Listen != "" && c.Metrics.Listen == c.Listen.TCP {
		bad("metrics.listen", "%s is listen.tcp already, which serves /metrics too; choose another address or leave it empty", c.Metrics.Listen)
	}
	errs = append(errs, c.finishLimits()...)
	errs = append(errs, c.finishLog()...)
	if c.Routing.Annotation == "" {
		bad("routing.annotation", "must name the pod annotation that picks a backend, e.g. %s", DefaultRoutingAnnotation)
	}
	known, backendErrs := c.finishBackends(baseDir)
	errs = append(errs, backendErrs...)
	errs = append(errs, c.finishRouting(known)...)
	return errors.Join(errs...)
}

// finishLimits checks the limits, timeouts and supervision durations.
func (c *Config) finishLimits() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config key %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Limits.MaxBodyBytes <= 0 {
		bad("limits.max_body_bytes", "must be a positive number of bytes, e.g. 10485760")
	}
	for key, d := range map[string]time.Duration{
		"timeouts.create": c.Timeouts.Create, "timeouts.status": c.Timeouts.Status, "timeouts.ping": c.Timeouts.Ping,
		"timeouts.delete": c.Timeouts.Delete, "timeouts.list": c.Timeouts.List, "timeouts.shutdown": c.Timeouts.Shutdown,
		"supervision.backoff_initial": c.Supervision.BackoffInitial, "supervision.backoff_max": c.Supervision.BackoffMax,
		"supervision.start_timeout": c.Supervision.StartTimeout, "supervision.stable_after": c.Supervision.StableAfter,
		"supervision.health_interval": c.Supervision.HealthInterval,
		"metrics.backend_timeout":     c.Metrics.BackendTimeout, "limits.max_grace_period": c.Limits.MaxGracePeriod,
		"timeouts.read": c.Timeouts.Read, "timeouts.write": c.Timeouts.Write, "timeouts.idle": c.Timeouts.Idle,
	} {
		if d <= 0 {
			bad(key, "must be a positive duration like 30s")
		}
	}
	if c.Timeouts.Create >= 120*time.Second {
		bad("timeouts.create", "%s is not under interLink's 120s wait for an answer; use 30s or so", c.Timeouts.Create)
	}
	if c.Limits.MaxConnectionsPerClient <= 0 {
		bad("limits.max_connections_per_client", "must be a positive number of connections, e.g. 1024")
	}
	if c.Limits.MaxGracePeriod > 0 && c.Limits.MaxGracePeriod < time.Second {
		bad("limits.max_grace_period", "%s is under a second, the unit of a grace period; use 1h or so", c.Limits.MaxGracePeriod)
	}
	if c.Supervision.BackoffMax < c.Supervision.BackoffInitial {
		bad("supervision.backoff_max", "must not be below supervision.backoff_initial")
	}
	return errs
}

// finishLog checks the log level and format.
func (c *Config) finishLog() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config key %s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not text or json", c.Log.Format)
	}
	return errs
}

// finishBackends checks each backend's name, digest, binary and policy, makes its binary path absolute, and
// returns the backends with a valid name by name.
func (c *Config) finishBackends(baseDir string) (map[string]BackendConfig, []error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config key %s: %s", key, fmt.Sprintf(format, args...)))
	}
	known := map[string]BackendConfig{}
	for i := range c.Backends {
		b := &c.Backends[i]
		key := fmt.Sprintf("backends[%d]", i)
		if !backendNameRE.MatchString(b.Name) {
			bad(key+".name", "%q must be lower-case letters, digits and '-'", b.Name)
			continue
		}
		if _, dup := known[b.Name]; dup {
			bad(key+".name", "backend %q is listed twice", b.Name)
		}
		if b.SHA256 != "" && !sha256RE.MatchString(b.SHA256) {
			bad(key+".sha256", "must be 64 hex digits (sha256sum of the binary)")
		}
		if b.Binary == "" {
			bad(key+".binary", "must name the backend's executable")
		} else {
			if !filepath.IsAbs(b.Binary) {
				b.Binary = filepath.Join(baseDir, b.Binary)
			}
			if b.IsEnabled() {
				if err := checkExecutable(b.Binary); err != nil {
					bad(key+".binary", "%v; build it (make build) or set enabled: false", err)
				}
			}
		}
		errs = append(errs, b.Policy.check(key+".policy")...)
		known[b.Name] = *b
	}
	if len(c.Backends) == 0 {
		bad("backends", "list at least one backend")
	}
	return known, errs
}

// finishRouting checks that the default backend and each rule's backend are among known, and that the
// default is enabled.
func (c *Config) finishRouting(known map[string]BackendConfig) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config key %s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch d, ok := known[c.Routing.Default]; {
	case c.Routing.Default == "":
		bad("routing.default", "must name the backend for pods no rule matches (one of %s)", strings.Join(sortedKeys(known), ", "))
	case !ok:
		bad("routing.default", "%q is not a configured backend (one of %s)", c.Routing.Default, strings.Join(sortedKeys(known), ", "))
	case !d.IsEnabled():
		bad("routing.default", "backend %q is disabled; enable it or pick another default", c.Routing.Default)
	}
	for i, r := range c.Routing.Rules {
		key := fmt.Sprintf("routing.rules[%d]", i)
		if _, ok := known[r.Backend]; !ok {
			bad(key+".backend", "%q is not a configured backend (one of %s)", r.Backend, strings.Join(sortedKeys(known), ", "))
		}
	}
	return errs
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("binary %s does not exist", path)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// defaultInstance is the hostname made label-safe: stable across restarts of the same host.
func defaultInstance() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	h = strings.ToLower(h)
	h = regexp.MustCompile(`[^a-z0-9.-]+`).ReplaceAllString(h, "-")
	return strings.Trim(h, "-.")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
