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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
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
	store    *Store
	retrier  *Retrier
	registry *prometheus.Registry
	ingester *Ingester
}

// New makes a service from cfg. It connects to nothing yet.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	opts := &redis.Options{
		Addr:                  cfg.RedisAddr(),
		Password:              cfg.RedisPassword,
		DB:                    cfg.RedisDB,
		ContextTimeoutEnabled: true,
	}
	if cfg.RedisTLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.RedisHost}
	}
	store, err := OpenStore(cfg.MongoURI, cfg.MongoDatabase)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(opts)
	reg := prometheus.NewRegistry()
	return &Service{
		cfg:      cfg,
		log:      log,
		rdb:      rdb,
		store:    store,
		retrier:  NewRetrier(rdb, cfg.JobStreamKey),
		registry: reg,
		ingester: NewIngester(rdb, store, NewMetrics(reg), log, cfg.StreamKey, cfg.ConsumerGroup, cfg.ConsumerName),
	}, nil
}

// Store is where the hooks are kept.
func (s *Service) Store() *Store { return s.store }

// Retrier puts hooks back on the jobs stream.
func (s *Service) Retrier() *Retrier { return s.retrier }

// Gatherer serves the service's metrics.
func (s *Service) Gatherer() prometheus.Gatherer { return s.registry }

// Ready reports whether Redis and MongoDB both answer.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping Redis: %w", err)
	}
	return s.store.Ping(ctx)
}

// Run serves api on BACKEND_PORT and ingests the status stream until ctx
// is done; then it stops reading, finishes the batch in hand, shuts the
// server down and closes its connections. It returns an error only when
// the server cannot listen or fails.
func (s *Service) Run(ctx context.Context, api http.Handler) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(s.cfg.BackendPort))
	if err != nil {
		return fmt.Errorf("listen on BACKEND_PORT %d: %w", s.cfg.BackendPort, err)
	}
	return s.Serve(ctx, ln, api)
}

// Serve is Run on a listener of the caller's.
func (s *Service) Serve(ctx context.Context, ln net.Listener, api http.Handler) error {
	defer s.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.ensureIndexes(ctx) })
	wg.Go(func() { _ = s.ingester.Run(ctx) })

	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	wg.Go(func() { served <- srv.Serve(ln) })
	s.log.Info("monitor started", "api", ln.Addr().String(), "stream", s.cfg.StreamKey,
		"group", s.cfg.ConsumerGroup, "consumer", s.cfg.ConsumerName)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		cancel()
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("HTTP server shutdown", "err", err)
	}
	wg.Wait()
	if serveErr == nil {
		serveErr = <-served
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve API: %w", serveErr)
	}
	s.log.Info("monitor stopped")
	return nil
}

// ensureIndexes creates the indexes, retrying until MongoDB answers.
func (s *Service) ensureIndexes(ctx context.Context) {
	wait := s.ingester.Backoff
	for {
		err := s.store.EnsureIndexes(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Warn("creating MongoDB indexes failed; retrying", "err", err, "retryIn", wait)
		sleep(ctx, wait)
		wait = min(2*wait, s.ingester.MaxBackoff)
	}
}

func (s *Service) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.Close(ctx); err != nil {
		s.log.Warn("close MongoDB", "err", err)
	}
	if err := s.rdb.Close(); err != nil {
		s.log.Warn("close Redis", "err", err)
	}
}
