// Command interlink-dispatcher is one interLink plugin endpoint that routes each pod to one of several
// backend processes (Docker, Podman, SLURM...). See config.yaml and the README for its configuration.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-chi/chi/v5"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
	"github.com/interlink-hq/interlink-dispatcher/shared/buildinfo"
)

// version and commit are set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=abc123";
// left empty, they come from the module version and VCS revision the Go toolchain records.
var version, commit string

const usage = `usage:
  interlink-dispatcher [--config FILE] [--listen ADDR]     serve interLink's plugin API (the default)
  interlink-dispatcher check [--config FILE]               validate the config and try every enabled backend
  interlink-dispatcher health [--config FILE | --url URL]  ask a running dispatcher's /healthz (a HEALTHCHECK)
  interlink-dispatcher --version                           print the version, commit and Go version
`

func main() {
	buildinfo.PrintIfAsked("interlink-dispatcher", version, commit)
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "check":
			os.Exit(checkMain(args[1:], os.Stdout, os.Stderr))
		case "health":
			os.Exit(healthMain(args[1:], os.Stdout, os.Stderr))
		}
	}
	fs := flag.NewFlagSet("interlink-dispatcher", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "config.yaml", "the YAML config file")
	listen := fs.String("listen", "", "serve on this address instead of listen.tcp (host:port), or on this unix socket (unix:///path or /path) instead of listen.unix")
	fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "interlink-dispatcher: unexpected argument %q\n%s", fs.Arg(0), usage)
		os.Exit(2)
	}
	if err := run(*configPath, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "interlink-dispatcher:", err)
		os.Exit(1)
	}
}

func run(configPath, listen string) error {
	cfg, err := dispatcher.LoadConfig(dispatcher.LoadOptions{Path: configPath, Environ: os.Environ(), Listen: listen})
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, os.Stderr)
	slog.SetDefault(log)

	journal, err := dispatcher.OpenJournal(cfg.DataDir)
	if err != nil {
		return err
	}
	defer journal.Close()

	metrics := dispatcher.NewMetrics(cfg, dispatcher.ReadBuildInfo(version, commit), log)
	sup, err := dispatcher.NewSupervisor(cfg, dispatcher.LaunchProcess, log, metrics)
	if err != nil {
		return err
	}
	srv, err := dispatcher.NewServer(dispatcher.Options{Config: cfg, Journal: journal, Backends: sup, Logger: log,
		Observer: metrics, Routes: func(r chi.Router) { r.Handle("/metrics", metrics.Handler()) }})
	if err != nil {
		return err
	}
	metrics.Attach(srv)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process the default way
	}()

	// The ports first: an address in use is reported at once, not after every backend has been launched.
	if err := srv.Listen(); err != nil {
		return err
	}
	// Backends outlive the HTTP server so that in-flight requests can finish on them.
	sup.Start(context.Background())
	defer sup.Stop()
	log.Info("interlink-dispatcher starting", "instance", cfg.Instance, "data_dir", cfg.DataDir, "backends", strings.Join(sup.Names(), ","))
	// The metrics listener failing (its port taken, say) stops the dispatcher too: a start that looks fine
	// but cannot be monitored is worse than one that fails.
	serveCtx, cancelServe := context.WithCancel(ctx)
	defer cancelServe()
	opsDone := make(chan error, 1)
	if cfg.Metrics.Listen != "" {
		go func() {
			err := srv.ServeOps(serveCtx, cfg.Metrics.Listen, nil)
			opsDone <- err
			cancelServe()
		}()
	} else {
		opsDone <- nil
	}
	if err := srv.Serve(serveCtx, nil); err != nil {
		return err
	}
	cancelServe()
	if err := <-opsDone; err != nil {
		return err
	}
	log.Info("stopping backends")
	return nil
}

// newLogger is the dispatcher's log as log.format and log.level say; the backends' lines go through it too.
func newLogger(c dispatcher.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by LoadConfig
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
