package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// EnvVar is the environment variable through which Launch hands a backend process its Env, as JSON.
const EnvVar = "INTERLINK_DISPATCHER_BACKEND_ENV"

// Serve is all a backend's main calls: it reads the backend's Env from EnvVar, builds the backend with f and
// serves it to the dispatcher over go-plugin until the dispatcher stops it; then, if the backend is an
// io.Closer, it closes it (within about two seconds, after which go-plugin kills the process), and the
// process exits. The ctx given to f lives as long as the backend is served.
//
// Serve makes slog's default logger write hclog JSON lines to stderr, which the dispatcher re-emits with
// their level, message and fields, tagged with the backend's name; a backend simply logs with slog. Serve
// never returns: when f fails it logs the error and exits with status 1, which the dispatcher reports.
func Serve(f Factory) {
	os.Exit(serve(f))
}

func serve(f Factory) int {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "%s is a backend of interlink-dispatcher: the dispatcher starts it for each "+
			"backend of its config that names this binary; it is not meant to be run by hand.\n",
			filepath.Base(os.Args[0]))
		return 1
	}
	levelName := os.Getenv(levelEnv)
	slog.SetDefault(slog.New(newHclogJSONHandler(os.Stderr, levelFromName(levelName))))
	pluginLog := hclog.New(&hclog.LoggerOptions{
		Output:     os.Stderr,
		JSONFormat: true,
		Level:      hclog.LevelFromString(levelName),
	})

	env, err := envFromEnviron()
	if err != nil {
		slog.Error(err.Error())
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := f(ctx, env)
	if err != nil {
		slog.Error(fmt.Sprintf("the backend cannot start: %v", err))
		return 1
	}
	if b == nil {
		slog.Error("the backend cannot start: its factory returned no backend")
		return 1
	}

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(b),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(append(opts, grpc.MaxRecvMsgSize(maxMessageSize),
				grpc.MaxSendMsgSize(maxMessageSize)))
		},
		Logger: pluginLog,
	})

	cancel()
	if c, ok := b.(io.Closer); ok {
		if err := c.Close(); err != nil {
			slog.Error(fmt.Sprintf("backend %q did not close cleanly: %v", env.Name, err))
			return 1
		}
	}
	return 0
}

func envFromEnviron() (Env, error) {
	raw, ok := os.LookupEnv(EnvVar)
	if !ok {
		return Env{}, fmt.Errorf("the environment variable %s is not set: the dispatcher sets it when it "+
			"starts a backend; start this binary through the dispatcher", EnvVar)
	}
	var env Env
	if err := json.Unmarshal([]byte(raw), &env); err != nil {
		return Env{}, fmt.Errorf("the environment variable %s is not the JSON of a backend Env: %v", EnvVar, err)
	}
	if len(env.Config) == 0 {
		env.Config = json.RawMessage("{}")
	}
	return env, nil
}
