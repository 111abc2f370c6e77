// Command sendhooks-dev runs the whole of Sendhooks in one process on
// embedded defaults, for a first try: an in-memory Redis-protocol server,
// the engine, the monitor keeping its webhooks in an SQLite file under
// -data-dir, and a demo receiver.
//
// Usage:
//
//	go run ./cmd/sendhooks-dev [-demo] [-redis-addr 127.0.0.1:6379] [-api-addr 127.0.0.1:5002]
//	    [-dashboard-addr 127.0.0.1:3000] [-data-dir ./.sendhooks] [-redis-url URL] [-mongodb-uri URI]
//
// It has no login, so it listens on loopback unless a flag says otherwise,
// and its banner then warns.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sendhooks/sendhooks/devstack"
)

func main() {
	var o devstack.Options
	flag.StringVar(&o.RedisAddr, "redis-addr", devstack.DefaultRedisAddr, "where the embedded Redis listens")
	flag.StringVar(&o.APIAddr, "api-addr", devstack.DefaultAPIAddr, "where the JSON API (and the demo receiver, under /demo/) listens; :5002 is every interface, without login")
	flag.StringVar(&o.DashboardAddr, "dashboard-addr", devstack.DefaultDashboardAddr, "where the dashboard listens; :3000 is every interface, without login")
	flag.StringVar(&o.DataDir, "data-dir", "./.sendhooks", "where the monitor keeps its SQLite file (monitor.db)")
	flag.StringVar(&o.RedisURL, "redis-url", "", "use this Redis (redis://[:password@]host:port/db) instead of the embedded one")
	flag.StringVar(&o.MongoURI, "mongodb-uri", "", "use this MongoDB (mongodb://host:port/db) instead of the embedded one")
	flag.BoolVar(&o.Demo, "demo", false, "send a few sample webhooks (some succeed, some fail and retry)")
	flag.Parse()

	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o.Banner = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := devstack.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "sendhooks-dev:", err)
		os.Exit(1)
	}
}
