// Command sendhooks-soak runs the engine under a steady flow of jobs, or
// against a large backlog, and reports what came through and how much
// memory it took. It is a manual tool, not run in CI (a 10-second version
// of it is: TestShortSoak in internal/soak, where the logic lives).
//
// It starts its own redis-server (found on PATH) on a free loopback port,
// a receiver on loopback that fails a share of requests and goes down for
// a while every minute, and the engine in this process, so the RSS it
// reports is the engine's (plus a bit per job of the soak's bookkeeping).
//
// Usage:
//
//	go run ./cmd/sendhooks-soak -duration 10m -rate 500
//	go run ./cmd/sendhooks-soak -backlog 1000000
//
// Every -report interval it prints elapsed time, jobs sent, delivered
// (distinct webhook ids answered 200), duplicates, final statuses, pending
// (sent without a final status yet) and RSS. At the end it waits for every
// job's final status, prints sent / delivered / duplicates / lost, and
// exits with status 1 if any job is lost or has two final statuses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sendhooks/sendhooks/internal/soak"
)

func main() {
	var o soak.Options
	flag.DurationVar(&o.Duration, "duration", time.Minute, "how long to produce jobs")
	flag.IntVar(&o.Rate, "rate", 500, "jobs per second")
	flag.IntVar(&o.Backlog, "backlog", 0, "preload this many jobs, then drain them (instead of a flow)")
	flag.DurationVar(&o.Report, "report", 5*time.Second, "interval between report lines")
	flag.Float64Var(&o.FailRate, "fail", 0.2, "share of requests the receiver fails with 500: every round-down(1/fail)-th request (flow mode)")
	flag.DurationVar(&o.DownEvery, "down-every", time.Minute, "the receiver goes down this often, 0 for never (flow mode)")
	flag.DurationVar(&o.DownFor, "down-for", 5*time.Second, "how long the receiver stays down")
	flag.DurationVar(&o.Drain, "drain", 2*time.Minute, "longest wait for the last final statuses")
	logLevel := flag.String("log-level", "error", "engine log level")
	flag.Parse()
	if o.Backlog > 0 {
		o.FailRate, o.DownEvery = 0, 0
		o.Drain = max(o.Drain, 30*time.Minute)
	}
	if err := o.Check(); err != nil {
		fmt.Fprintln(os.Stderr, "sendhooks-soak:", err)
		os.Exit(2)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "sendhooks-soak: -log-level:", err)
		os.Exit(2)
	}
	o.Out = os.Stdout
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if _, err := soak.Run(ctx, o); err != nil {
		if !errors.Is(err, soak.ErrLost) {
			fmt.Fprintln(os.Stderr, "sendhooks-soak:", err)
		}
		os.Exit(1)
	}
}
