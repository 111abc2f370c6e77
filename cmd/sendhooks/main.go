// Command sendhooks is the webhook delivery engine: it reads webhook jobs
// from a Redis stream and delivers them, signed and retried, writing a
// status event for every step.
//
// Usage:
//
//	sendhooks [-config FILE]
//	sendhooks send -url URL [-data JSON] ...   (enqueue one job; see sendhooks send -h)
//
// Without -config it reads ./config.json, else /root/config.json, else
// runs on defaults; SENDHOOKS_* environment variables override either.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/client/sendcmd"
	"github.com/sendhooks/sendhooks/engine"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sendhooks:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) > 1 && os.Args[1] == "send" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		cmd := sendcmd.Command{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
		return cmd.Run(ctx, os.Args[2:])
	}
	configFlag := flag.String("config", "", "config file (default ./config.json, else /root/config.json, else built-in defaults)")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println("sendhooks", sendhooks.Version)
		return nil
	}

	// Signals are caught from here on, so that one arriving while the engine
	// starts stops it as gracefully as one arriving later.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	path := engine.ConfigPath(*configFlag)
	cfg, err := engine.Load(path, os.Getenv)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	if path == "" {
		log.Info("no config file found; running on defaults and SENDHOOKS_* environment variables")
	}
	logConfig(log, path, cfg)
	proxy, err := engine.ProxyEnvironment()
	if err != nil {
		return err
	}
	if proxy != "" {
		log.Info("deliveries go through the proxies the environment names", "proxy", proxy)
	}

	rdb, err := engine.NewRedisClient(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()

	return engine.New(cfg, rdb, log).Run(ctx)
}

// logConfig logs the configuration at start. It warns of a numWorkers
// below 4: the older engine's example config said 1 while that engine ran
// every job at once, and here it means one delivery at a time.
func logConfig(log *slog.Logger, path string, cfg engine.Config) {
	log.Info("config loaded", "file", path, "config", cfg)
	if cfg.NumWorkers < 4 {
		log.Warn(fmt.Sprintf("numWorkers is %d, so deliveries run %d at a time; raise numWorkers in the config file or set SENDHOOKS_NUM_WORKERS (default %d)",
			cfg.NumWorkers, cfg.NumWorkers, engine.Default().NumWorkers))
	}
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("logLevel %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}
