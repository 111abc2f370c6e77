package monitor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// shutdownTimeout bounds how long a stopping service waits for requests.
const shutdownTimeout = 10 * time.Second

// Service is a whole monitor: ingestion of the status stream and an HTTP
// server for the API. The API handler is built by the caller (package web)
// from the service's Store, Retrier, Ready and Gatherer, so that a binary
// can embed the monitor.
type Service struct {
	cfg      Config
	log      *slog.Logger
	rdb      *redis.Client
	store    Store
	retrier  *Retrier
	registry *prometheus.Registry
	metrics  *Metrics
	ingester *Ingester
	// prepared is set once the store's Setup has succeeded.
	prepared atomic.Bool
}

// New makes a service from cfg that keeps its webhooks in store, which it
// closes when it stops. It connects to nothing yet.
func New(cfg Config, store Store, log *slog.Logger) *Service {
	opts := &redis.Options{
		Addr:                  cfg.RedisAddr(),
		Password:              cfg.RedisPassword,
		DB:                    cfg.RedisDB,
		ContextTimeoutEnabled: true,
	}
	if cfg.RedisTLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.RedisHost}
	}
	rdb := redis.NewClient(opts)
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	return &Service{
		cfg:      cfg,
		log:      log,
		rdb:      rdb,
		store:    store,
		retrier:  NewRetrier(rdb, store, cfg.JobStreamKey),
		registry: reg,
		metrics:  metrics,
		ingester: NewIngester(rdb, store, metrics, log, cfg.StreamKey, cfg.ConsumerGroup, cfg.ConsumerName),
	}
}

// Store is where the hooks are kept.
func (s *Service) Store() Store { return s.store }

// Retrier puts hooks back on the jobs stream.
func (s *Service) Retrier() *Retrier { return s.retrier }

// Gatherer serves the service's metrics.
func (s *Service) Gatherer() prometheus.Gatherer { return s.registry }

// Ready reports whether the store is prepared and Redis and the store both
// answer.
func (s *Service) Ready(ctx context.Context) error {
	if !s.prepared.Load() {
		return errors.New("the store is not prepared yet (tables, indexes)")
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping Redis: %w", err)
	}
	return s.store.Ping(ctx)
}

// Listener is one HTTP server of the monitor: what it serves, and where.
type Listener struct {
	Name     string // for logs and errors: "api", "dashboard"
	Listener net.Listener
	Handler  http.Handler
}

// Run serves api on BACKEND_PORT and dashboard on DASHBOARD_PORT, and
// ingests the status stream, until ctx is done (see Serve).
func (s *Service) Run(ctx context.Context, api, dashboard http.Handler) error {
	apiLn, err := net.Listen("tcp", ":"+strconv.Itoa(s.cfg.BackendPort))
	if err != nil {
		return fmt.Errorf("listen on BACKEND_PORT %d: %w", s.cfg.BackendPort, err)
	}
	dashLn, err := net.Listen("tcp", ":"+strconv.Itoa(s.cfg.DashboardPort))
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("listen on DASHBOARD_PORT %d: %w", s.cfg.DashboardPort, err)
	}
	return s.Serve(ctx, Listener{"api", apiLn, api}, Listener{"dashboard", dashLn, dashboard})
}

// Serve runs an HTTP server on each listener and ingests the status stream
// until ctx is done or a server fails; then it stops reading, finishes the
// batch in hand, shuts the servers down and closes its connections. It
// returns an error only when a server fails.
func (s *Service) Serve(ctx context.Context, listeners ...Listener) error {
	defer s.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if s.setup(ctx) {
			wg.Go(func() { _ = s.ingester.Run(ctx) })
			wg.Go(func() { s.prune(ctx) })
		}
	})

	servers := make([]*http.Server, len(listeners))
	failed := make(chan error, len(listeners))
	for i, l := range listeners {
		srv := &http.Server{Handler: l.Handler, ReadHeaderTimeout: 10 * time.Second}
		servers[i] = srv
		wg.Go(func() {
			if err := srv.Serve(l.Listener); !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("serve %s: %w", l.Name, err)
			}
		})
		s.log.Info("monitor serving", "server", l.Name, "addr", l.Listener.Addr().String())
	}
	s.log.Info("monitor started", "stream", s.cfg.StreamKey,
		"group", s.cfg.ConsumerGroup, "consumer", s.cfg.ConsumerName)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-failed:
		cancel()
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer scancel()
	for i, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			s.log.Warn("HTTP server shutdown", "server", listeners[i].Name, "err", err)
		}
	}
	wg.Wait()
	s.log.Info("monitor stopped")
	return serveErr
}

// EngineQueues is where the engine's work stands in Redis.
type EngineQueues struct {
	RetrySet int64 // jobs waiting in the retry set
	Lag      int64 // jobs-stream entries not yet read by any engine group (Redis 7)
	Pending  int64 // jobs read by an engine and not yet acknowledged
	// Streams are the lengths of the streams, which the engine trims.
	Streams []StreamLength
}

// StreamLength is the number of entries a stream holds.
type StreamLength struct {
	Name    string
	Entries int64
}

// EngineQueues reads where the engine's work stands (ReadEngineQueues).
func (s *Service) EngineQueues(ctx context.Context) (EngineQueues, error) {
	return ReadEngineQueues(ctx, s.rdb, s.cfg.JobStreamKey, s.cfg.StreamKey)
}

// ReadEngineQueues reads the size of the engine's retry set, its consumer
// groups' lag and pending counts on jobStream, and the lengths of the jobs,
// status, dead-letter and rejected-event streams.
func ReadEngineQueues(ctx context.Context, rdb *redis.Client, jobStream, statusStream string) (EngineQueues, error) {
	var q EngineQueues
	pipe := rdb.Pipeline()
	retry := pipe.ZCard(ctx, sendhooks.RetrySet(jobStream))
	names := []string{jobStream, statusStream, sendhooks.DeadLetterStream(jobStream), sendhooks.RejectedStream(statusStream)}
	lens := make([]*redis.IntCmd, len(names))
	for i, name := range names {
		lens[i] = pipe.XLen(ctx, name)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return q, fmt.Errorf("sizes of the engine's streams: %w", err)
	}
	q.RetrySet = retry.Val()
	for i, name := range names {
		q.Streams = append(q.Streams, StreamLength{Name: name, Entries: lens[i].Val()})
	}
	groups, err := rdb.XInfoGroups(ctx, jobStream).Result()
	if err != nil && !strings.Contains(err.Error(), "no such key") {
		return q, fmt.Errorf("consumer groups of %s: %w", jobStream, err)
	}
	for _, g := range groups {
		q.Lag += max(g.Lag, 0)
		q.Pending += g.Pending
	}
	return q, nil
}

// setup prepares the store, retrying until it answers; it reports
// whether it succeeded before ctx ended.
func (s *Service) setup(ctx context.Context) bool {
	wait := s.ingester.Backoff
	start := time.Now()
	// Setup is quick but for the first start after an upgrade that
	// converts stored counters (about 15 s per million on SQLite): say
	// what the monitor is doing meanwhile, and how long it took.
	s.log.Info("preparing the store: indexes, and a one-time conversion of older counters after an upgrade")
	for {
		err := s.store.Setup(ctx, s.cfg.Retention)
		if err == nil {
			s.prepared.Store(true)
			s.log.Info("the store is prepared", "took", time.Since(start).Round(time.Millisecond))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.log.Warn("preparing the store failed; retrying", "err", err, "retryIn", wait)
		sleep(ctx, wait)
		wait = min(2*wait, s.ingester.MaxBackoff)
	}
}

func (s *Service) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.Close(ctx); err != nil {
		s.log.Warn("close the store", "err", err)
	}
	if err := s.rdb.Close(); err != nil {
		s.log.Warn("close Redis", "err", err)
	}
}
