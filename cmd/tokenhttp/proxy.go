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
	"time"

	"github.com/tokenhttp/tokenhttp/cmd/tokenhttp/internal/proxy"
)

const proxyHelp = `Usage: tokenhttp proxy --config FILE [flags]

A credential-injecting egress proxy: requests to a route's path prefix go
to its upstream with the route's token as Authorization (the client's is
dropped). Routing is on the decoded path, and a prefix is decoded too
(/caf%C3%A9 is /café); a path whose encoded form would split segments
differently, such as one with %2F, gets no credential. /livez, /readyz
and /metrics are served on the admin address.

Signals: SIGHUP reloads the config (a bad one is logged and the running
one kept); SIGTERM or SIGINT drains requests in flight, up to
--drain-timeout, and exits 0.

Exit codes: 0 ok, 1 the proxy failed, 2 usage or a bad config.

Examples:
  tokenhttp proxy --check --config proxy.yaml
  tokenhttp proxy --config proxy.yaml --log-format text
`

// runProxy is the proxy subcommand. It parses its flags as the other
// commands do; it takes its streams and environment one by one so that
// tests can run it as the binary does.
func runProxy(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := env{stdout: stdout, stderr: stderr, getenv: getenv}
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	file := fs.String("config", "", "the YAML config `file` (required)")
	check := fs.Bool("check", false, "validate the config, read its secrets, and exit")
	logFormat := fs.String("log-format", "json", "log format: json or text")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	drain := fs.Duration("drain-timeout", 30*time.Second, "how long SIGTERM waits for requests in flight")
	pos, help, err := parseArgs(fs, args)
	switch {
	case help:
		printHelp(stdout, proxyHelp, fs)
		return exitOK
	case err != nil:
		return flagError(e, "proxy", err)
	case *file == "" || len(pos) > 0:
		return flagError(e, "proxy", usagef("--config FILE is required and no argument is taken"))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return flagError(e, "proxy", usagef("--log-level %q: use debug, info, warn or error", *logLevel))
	}
	hopts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	switch *logFormat {
	case "json":
		log = slog.New(slog.NewJSONHandler(stderr, hopts))
	case "text":
		log = slog.New(slog.NewTextHandler(stderr, hopts))
	default:
		return flagError(e, "proxy", usagef("--log-format %q: use json or text", *logFormat))
	}

	cfg, err := proxy.LoadConfig(*file)
	if err != nil {
		fmt.Fprintln(stderr, "tokenhttp proxy:", err)
		return exitUsage
	}
	if *check {
		if err := proxy.Check(cfg, getenv); err != nil {
			fmt.Fprintln(stderr, "tokenhttp proxy:", err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "%s: ok (%d routes)\n", *file, len(cfg.Routes))
		return exitOK
	}

	// Signals first, so that none is missed while the proxy starts.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigs)

	p, err := proxy.New(ctx, cfg, proxy.Options{ConfigPath: *file, Logger: log, Getenv: getenv})
	if err != nil {
		fmt.Fprintln(stderr, "tokenhttp proxy:", err)
		return exitUsage
	}
	if err := p.Start(); err != nil {
		fmt.Fprintln(stderr, "tokenhttp proxy:", err)
		_ = p.Shutdown(context.Background())
		return exitFailed
	}
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				log.Info("SIGHUP: reloading the config", "file", *file)
				_ = p.Reload() // a failure is logged; the running config stays
				continue
			}
			log.Info("draining requests in flight", "signal", s.String(), "timeout", drain.String())
		case <-ctx.Done():
			log.Info("draining requests in flight", "timeout", drain.String())
		case err := <-p.Failed():
			log.Error("a listener stopped; exiting", "error", err.Error())
			_ = p.Shutdown(context.Background())
			return exitFailed
		}
		sctx, cancel := context.WithTimeout(context.Background(), *drain)
		err := p.Shutdown(sctx)
		cancel()
		if err != nil {
			log.Warn("shutdown", "error", err.Error())
		}
		log.Info("stopped")
		return exitOK
	}
}
