package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/interlink-hq/interlink-dispatcher/dispatcher"
)

// checkMain is `interlink-dispatcher check`: it loads and validates the config as the dispatcher would,
// then launches each enabled backend (see dispatcher.CheckBackends) and prints one line for each. It opens
// no journal, binds no listener and reconciles nothing, so it can run beside a dispatcher on the same
// config. It returns 0 when everything is usable, 1 on any problem, 2 on a usage error.
func checkMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("interlink-dispatcher check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.yaml", "the YAML config file to check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "interlink-dispatcher check: unexpected argument %q; usage: interlink-dispatcher check [--config FILE]\n", fs.Arg(0))
		return 2
	}
	cfg, err := dispatcher.LoadConfig(dispatcher.LoadOptions{Path: *configPath, Environ: os.Environ()})
	if err != nil {
		fmt.Fprintf(stdout, "config %s: FAILED:\n%v\n", *configPath, err)
		return 1
	}
	enabled := 0
	for _, b := range cfg.Backends {
		if b.IsEnabled() {
			enabled++
		}
	}
	fmt.Fprintf(stdout, "config %s: ok: instance %s, data_dir %s, %d backend(s) enabled\n", *configPath, cfg.Instance, cfg.DataDir, enabled)

	// The backends' own log lines go to stderr, warnings and errors only: what matters of them is in their
	// line on stdout, and a failed start there quotes what the backend said last.
	level := slog.LevelWarn
	if cfg.Log.Level == "debug" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	results, err := dispatcher.CheckBackends(ctx, cfg, dispatcher.LaunchProcess, log)
	if err != nil {
		fmt.Fprintf(stdout, "backends: FAILED: %v\n", err)
		return 1
	}
	code := 0
	for _, r := range results {
		fmt.Fprintln(stdout, r.Line())
		if !r.OK() {
			code = 1
		}
	}
	return code
}
