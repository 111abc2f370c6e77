package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/mongo"
)

// runMigrate is `sendhooks-monitor migrate [-batch n] [-pause d]`: it
// converts the older monitor's documents in the MongoDB of the monitor's
// environment (MONGODB_URI) with mongo.Store.Migrate, printing its
// progress and a summary on stderr.
func runMigrate(args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sendhooks-monitor migrate [-batch n] [-pause d]")
		fmt.Fprintln(stderr, "Converts the older monitor's webhooks in the MongoDB of MONGODB_URI to this monitor's shape, in place.")
		fs.PrintDefaults()
	}
	batch := fs.Int("batch", mongo.DefaultMigrateBatch, "documents converted per batch, 1 to 10000")
	pause := fs.Duration("pause", 0, "time to wait between batches, to spare a busy server")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("migrate: %w", err)
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("migrate: unexpected arguments %q", fs.Args())
	case *batch < 1 || *batch > 10000:
		return fmt.Errorf("migrate: -batch must be from 1 to 10000, got %d", *batch)
	case *pause < 0:
		return fmt.Errorf("migrate: -pause must not be negative, got %v", *pause)
	}
	cfg, err := monitor.LoadConfig(getenv)
	if err != nil {
		return err
	}
	if cfg.SQLitePath != "" {
		fmt.Fprintln(stderr, "migrate: nothing to migrate: SQLITE_PATH names an SQLite file, and the older monitor kept its webhooks in MongoDB only")
		return nil
	}
	store, err := mongo.Open(cfg.MongoURI, cfg.MongoDatabase)
	if err != nil {
		return err
	}
	defer store.Close(context.Background())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	where := fmt.Sprintf("database %q, collection %q", cfg.MongoDatabase, mongo.HooksCollection)
	p, err := store.Migrate(ctx, mongo.MigrateOptions{Batch: *batch, Pause: *pause}, func(p mongo.MigrateProgress) {
		if p.Converted == 0 {
			return
		}
		fmt.Fprintf(stderr, "migrate: converted %d/%d (%.0f%%), %.0f documents/s\n",
			p.Converted, p.ToConvert, 100*float64(p.Converted)/float64(max(p.ToConvert, 1)), p.Rate())
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("migrate: stopped after converting %d of %d documents; run it again to convert the rest", p.Converted, p.ToConvert)
		}
		if p.Converted == 0 {
			return fmt.Errorf("migrate: %w", err)
		}
		return fmt.Errorf("migrate: %w (converted %d of %d documents before; running it again goes on from there)", err, p.Converted, p.ToConvert)
	}
	if p.Unreadable > 0 {
		for _, e := range p.Errors {
			fmt.Fprintln(stderr, "migrate: left as it is:", e)
		}
		return fmt.Errorf("migrate: converted %d documents; %d could not be read and are left as they are (the first are listed above)", p.Converted, p.Unreadable)
	}
	switch {
	case p.Total == 0:
		fmt.Fprintf(stderr, "migrate: nothing to migrate: no document of the older monitor in %s\n", where)
	case p.ToConvert == 0:
		fmt.Fprintf(stderr, "migrate: nothing to migrate: the %d documents of the older monitor in %s are converted already\n", p.Total, where)
	default:
		fmt.Fprintf(stderr, "migrate: done: converted %d documents of the older monitor in %s in %v (%.0f documents/s); %d of them in all\n",
			p.Converted, where, p.Elapsed.Round(time.Millisecond), p.Rate(), p.Total)
	}
	return nil
}
