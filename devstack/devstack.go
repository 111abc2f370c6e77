// Package devstack runs the whole of Sendhooks in one process for a first
// try: an in-memory Redis-protocol server, the engine, the monitor with its
// API keeping its webhooks in an SQLite file, and a demo receiver to send
// webhooks to. Real Redis and MongoDB servers can stand in for the embedded
// ones.
//
// It is for trying Sendhooks on a laptop, not for production: the embedded
// Redis keeps nothing across restarts, and the engine is told to allow
// private networks (so it can reach the demo receiver) and to retry on a
// schedule of seconds instead of hours.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks/engine"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/stores"
	"github.com/sendhooks/sendhooks/web"
)

// Where the stack listens by default (sendhooks-dev's flags): on loopback
// only, since it has no login and its engine may reach private networks.
const (
	DefaultRedisAddr     = "127.0.0.1:6379"
	DefaultAPIAddr       = "127.0.0.1:5002"
	DefaultDashboardAddr = "127.0.0.1:3000"
)

// Options says where the stack listens and what it runs on.
type Options struct {
	RedisAddr string // where the embedded Redis listens
	APIAddr   string // the monitor's JSON API, and the demo receiver under /demo/
	// DashboardAddr is where the dashboard listens.
	DashboardAddr string
	DataDir       string // where the monitor's SQLite file is kept
	RedisURL      string // a real Redis (redis://…) instead of the embedded one
	MongoURI      string // a real MongoDB (mongodb://…) instead of the embedded one
	Demo          bool   // send a few sample webhooks once everything runs
	// RetrySchedule replaces the engine's dev schedule (RetrySchedule) when set.
	RetrySchedule []time.Duration
	Log           *slog.Logger
	Banner        io.Writer // where the welcome text goes
}

// RetrySchedule is the engine's schedule in the dev stack: seconds, so
// that a newcomer sees retries happen.
var RetrySchedule = []time.Duration{2 * time.Second, 5 * time.Second, 10 * time.Second}

// Run starts every part, prints the banner, and runs until ctx is done;
// then it stops the parts in order (engine, monitor, servers).
func Run(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Banner == nil {
		o.Banner = io.Discard
	}
	redisOpts, stopRedis, err := startRedis(o)
	if err != nil {
		return err
	}
	defer stopRedis()
	apiLn, err := net.Listen("tcp", o.APIAddr)
	if err != nil {
		return fmt.Errorf("-api-addr %s: %w", o.APIAddr, err)
	}
	defer apiLn.Close()
	dashLn, err := net.Listen("tcp", o.DashboardAddr)
	if err != nil {
		return fmt.Errorf("-dashboard-addr %s: %w", o.DashboardAddr, err)
	}
	defer dashLn.Close()
	svc, api, dashboard, storeName, err := newMonitor(redisOpts, o, o.Log)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(redisOpts)
	defer rdb.Close()
	demo := newDemo(rdb, apiLn.Addr().String(), o.Log)
	eng, err := newEngine(redisOpts, o.RetrySchedule)
	if err != nil {
		return err
	}
	engRdb, err := engine.NewRedisClient(eng)
	if err != nil {
		return err
	}
	defer engRdb.Close()

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- engine.New(eng, engRdb, o.Log.With("part", "engine")).Run(ctx) })
	wg.Go(func() {
		errs <- svc.Serve(ctx,
			monitor.Listener{Name: "api", Listener: apiLn, Handler: demo.wrap(api)},
			monitor.Listener{Name: "dashboard", Listener: dashLn, Handler: dashboard})
	})

	info := bannerInfo{
		api: apiLn.Addr().String(), dashboard: dashLn.Addr().String(), redis: redisOpts.Addr, store: storeName,
		embeddedRedis: o.RedisURL == "", embeddedStore: o.MongoURI == "",
	}
	info.exposed = exposed(info)
	printBanner(o.Banner, info)
	if o.Demo {
		wg.Go(func() { demo.sendSamples(ctx) })
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(errs <-chan error) []error {
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return all
}

// startRedis starts the embedded Redis, or reads -redis-url.
func startRedis(o Options) (*redis.Options, func(), error) {
	if o.RedisURL != "" {
		opts, err := redis.ParseURL(o.RedisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("-redis-url %q: %w", o.RedisURL, err)
		}
		return opts, func() {}, nil
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(o.RedisAddr); err != nil {
		return nil, nil, fmt.Errorf("embedded Redis on -redis-addr %s: %w", o.RedisAddr, err)
	}
	return &redis.Options{Addr: m.Addr()}, m.Close, nil
}

// newEngine is the engine's configuration in the dev stack.
func newEngine(r *redis.Options, schedule []time.Duration) (engine.Config, error) {
	cfg := engine.Default()
	cfg.Redis.Address = r.Addr
	cfg.Redis.Password = r.Password
	cfg.Redis.DB = r.DB
	cfg.Redis.TLS = r.TLSConfig != nil
	cfg.ConsumerName = "sendhooks-dev"
	cfg.NumWorkers = 16
	cfg.AllowPrivateNetworks = true
	cfg.RetrySchedule = RetrySchedule
	if schedule != nil {
		cfg.RetrySchedule = schedule
	}
	cfg.RequestTimeout = 5 * time.Second
	cfg.VisibilityTimeout = 30 * time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg.Resolve()
}

// newMonitor is the monitor with its API and dashboard in the dev stack,
// keeping its webhooks in an SQLite file under the data dir, or in the
// MongoDB of -mongodb-uri. storeName says which, for the banner.
func newMonitor(r *redis.Options, o Options, log *slog.Logger) (svc *monitor.Service, api, dashboard http.Handler, storeName string, err error) {
	host, port, err := net.SplitHostPort(r.Addr)
	if err != nil {
		return nil, nil, nil, "", fmt.Errorf("redis address %q: %w", r.Addr, err)
	}
	env := map[string]string{
		"REDIS_HOST":     host,
		"REDIS_PORT":     port,
		"REDIS_PASSWORD": r.Password,
		"REDIS_DB":       strconv.Itoa(r.DB),
		"REDIS_TLS":      strconv.FormatBool(r.TLSConfig != nil),
		"CONSUMER_NAME":  "sendhooks-dev",
	}
	if o.MongoURI != "" {
		env["MONGODB_URI"], storeName = o.MongoURI, o.MongoURI
	} else {
		path, err := filepath.Abs(filepath.Join(o.DataDir, "monitor.db"))
		if err != nil {
			return nil, nil, nil, "", fmt.Errorf("-data-dir %s: %w", o.DataDir, err)
		}
		env["SQLITE_PATH"], storeName = path, path
	}
	cfg, err := monitor.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		return nil, nil, nil, "", err
	}
	store, err := stores.Open(cfg)
	if err != nil {
		return nil, nil, nil, "", err
	}
	mlog := log.With("part", "monitor")
	svc = monitor.New(cfg, store, mlog)
	api, dashboard = web.ForService(svc,
		web.APIConfig{AllowedOrigins: []string{"*"}, Logger: mlog},
		web.DashboardConfig{Logger: mlog})
	return svc, api, dashboard, storeName, nil
}
