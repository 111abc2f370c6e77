// Command sendhooks-monitor tails the engine's status stream into MongoDB,
// serves the JSON API on BACKEND_PORT and the dashboard on DASHBOARD_PORT.
// It is configured by the environment; see docs/monitor.md and
// docs/dashboard.md.
//
// `sendhooks-monitor migrate` converts the older monitor's documents in
// the MongoDB the environment names to this monitor's shape, and exits;
// see docs/migration.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/stores"
	"github.com/sendhooks/sendhooks/web"
)

func main() {
	run := run
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		run = func() error { return runMigrate(os.Args[2:], os.Getenv, os.Stderr) }
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sendhooks-monitor:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := monitor.LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var handler slog.Handler = slog.NewJSONHandler(os.Stderr, opts)
	if cfg.LogFormat == "text" {
		handler = slog.NewTextHandler(os.Stderr, opts)
	}
	log := slog.New(handler)
	if cfg.APIToken == "" {
		log.Warn("SENDHOOKS_API_TOKEN is not set: the API is open to anyone who can reach BACKEND_PORT")
	}

	dash, err := web.LoadDashboardConfig(os.Getenv)
	if err != nil {
		return err
	}
	dash.Logger = log
	if dash.User == "" {
		log.Warn("SENDHOOKS_DASHBOARD_USER and SENDHOOKS_DASHBOARD_PASSWORD are not set: the dashboard is open to anyone who can reach DASHBOARD_PORT")
	}

	store, err := stores.Open(cfg)
	if err != nil {
		return err
	}
	svc := monitor.New(cfg, store, log)
	api, dashboard := web.ForService(svc, web.APIConfig{
		AllowedOrigins: cfg.AllowedOrigins,
		Token:          cfg.APIToken,
		Logger:         log,
	}, dash)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return svc.Run(ctx, api, dashboard)
}
