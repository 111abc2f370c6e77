// Command sendhooks-bench measures the engine and the monitor on this
// machine and prints a Markdown table of the figures, with the project's
// targets. It starts its own redis-server (from PATH), loopback receivers
// and a forward proxy in its own process, and the engine, the bare HTTP
// client it is compared with and the monitor (on an SQLite file in a
// temporary directory) each in a child process of their own. The engine
// runs on its defaults, as a user without a config file gets them, but for
// the few settings the table's first row names.
//
// Usage:
//
//	go run ./cmd/sendhooks-bench            # everything; about 15 minutes on 2 cores
//	go run ./cmd/sendhooks-bench -quick     # small sizes, to check that it runs
//	go run ./cmd/sendhooks-bench -only engine   # about 7 minutes
//	go run ./cmd/sendhooks-bench -only monitor  # SQLite, 1,000,000 webhooks; about 5 minutes
//	go run ./cmd/sendhooks-bench -only engine -engine-steps one-host,isolation
//
// Progress goes to stderr, the table to stdout. It exits 0 even when a
// target is missed: the table says so.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sendhooks-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if role := os.Getenv(bench.ChildEnv); role != "" {
		return bench.RunChild(ctx, role)
	}

	eo := bench.EngineOptions{
		Jobs: 60_000, Rounds: 3, Hosts: 50,
		LatencyRate: 1000, LatencyDuration: 10 * time.Second,
		Backlog: 1_000_000, BacklogRun: 10 * time.Second,
		IsolationJobs: 20_000, SlowDelay: 2 * time.Second,
		Progress: os.Stderr,
	}
	mo := bench.MonitorOptions{Requests: 20, Progress: os.Stderr}
	quick := flag.Bool("quick", false, "small sizes: check that the benchmark runs, not how fast")
	only := flag.String("only", "", `measure only "engine" or "monitor"`)
	flag.IntVar(&eo.Jobs, "jobs", eo.Jobs, "deliveries per throughput run")
	flag.IntVar(&eo.Rounds, "rounds", eo.Rounds, "rounds of each comparison of the engine with the bare client, of the latency run and of the isolation runs")
	flag.IntVar(&eo.Backlog, "backlog", eo.Backlog, "jobs queued for the memory measurement")
	flag.IntVar(&eo.IsolationJobs, "isolation-jobs", eo.IsolationJobs, "jobs for the fast receiver in each isolation run (as many again for the slow one)")
	flag.StringVar(&eo.CPUProfile, "cpuprofile", "", "write the engine's CPU profile of the last throughput run to this file")
	steps := flag.String("engine-steps", "", "make only these engine measurements, comma-separated, of "+strings.Join(bench.EngineSteps(), ", ")+" (default all)")
	flag.IntVar(&mo.Webhooks, "webhooks", 0, "webhooks sent through the monitor's ingestion, then its API is timed over them (default 1000000; 10000 with -store ferretdb)")
	flag.IntVar(&mo.Requests, "requests", mo.Requests, "times each monitor request is timed, after one warm-up")
	flag.StringVar(&mo.Store, "store", bench.StoreSQLite, `the monitor's store: "sqlite" (a file in a temporary directory) or "ferretdb" (the embedded FerretDB, a functional smoke test only)`)
	flag.StringVar(&mo.MongoURI, "mongodb-uri", "", "measure the monitor on this MongoDB (in a database of its own, dropped when done) instead of SQLite")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if mo.MongoURI != "" && !set["store"] {
		mo.Store = bench.StoreMongoDB
	}
	if !set["webhooks"] {
		mo.Webhooks = 1_000_000
		if mo.Store == bench.StoreFerretDB {
			mo.Webhooks = 10_000
		}
	}
	var err error
	if eo.Steps, err = bench.ParseEngineSteps(*steps); err != nil {
		return fmt.Errorf("-engine-steps: %w", err)
	}
	if *only != "" && *only != "engine" && *only != "monitor" {
		return fmt.Errorf(`-only %q: want "engine" or "monitor"`, *only)
	}
	for _, name := range []string{"engine-steps", "isolation-jobs", "cpuprofile"} {
		if set[name] && *only == "monitor" {
			return fmt.Errorf("-%s is for the engine's measurements, which -only monitor leaves out", name)
		}
	}
	if *quick {
		// Small sizes, except where a flag says otherwise.
		small := func(name string, v *int, n int) {
			if !set[name] {
				*v = n
			}
		}
		small("jobs", &eo.Jobs, 2000)
		small("rounds", &eo.Rounds, 1)
		small("backlog", &eo.Backlog, 20_000)
		small("webhooks", &mo.Webhooks, 1000)
		eo.BacklogRun, eo.LatencyRate, eo.LatencyDuration = time.Second, 200, time.Second
		small("isolation-jobs", &eo.IsolationJobs, 1000)
		eo.SlowDelay, mo.Requests = 200*time.Millisecond, 3
	}
	for name, v := range map[string]int{"-jobs": eo.Jobs, "-requests": mo.Requests, "-rounds": eo.Rounds, "-backlog": eo.Backlog, "-isolation-jobs": eo.IsolationJobs} {
		if v < 1 {
			return fmt.Errorf("%s %d: want at least 1", name, v)
		}
	}
	if mo.Webhooks < bench.MinMonitorWebhooks {
		return fmt.Errorf("-webhooks %d: want at least %d", mo.Webhooks, bench.MinMonitorWebhooks)
	}

	machine := bench.Machine()
	fmt.Fprintf(os.Stderr, "sendhooks-bench %s on %s\n", sendhooks.Version, machine)
	var report bench.Report
	if *only != "monitor" {
		res, err := bench.Engine(ctx, eo)
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		report.Engine = &res
	}
	if *only != "engine" {
		res, err := bench.Monitor(ctx, mo)
		if err != nil {
			return fmt.Errorf("monitor: %w", err)
		}
		report.Monitor = &res
	}
	fmt.Printf("Sendhooks %s on %s\n\n", sendhooks.Version, machine)
	return report.Write(os.Stdout)
}
