package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/redisserver"
	"github.com/sendhooks/sendhooks/internal/redistest"
)

// BenchmarkDelivery compares, in one run, the engine's delivery rate for a
// preloaded backlog (status events included) with the rate of a bare Go
// HTTP client posting the same body to the same kind of receiver with as
// many concurrent requests as the engine has workers. b.N is the number of
// deliveries; run it with a fixed count, as docs/benchmarks.md does:
//
//	go test -run '^$' -bench Delivery -benchtime 20000x -count 3 ./engine/
func BenchmarkDelivery(b *testing.B) {
	body := []byte(`{"order_id":"abc123","amount":"100.00","currency":"USD","status":"processed"}`)
	const workers = 64

	b.Run("bare-client", func(b *testing.B) {
		rc := benchReceiver(b)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
		var next atomic.Int64
		var wg sync.WaitGroup
		cpu := startCPU(b, nil)
		b.ResetTimer()
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					resp, err := client.Post(rc.URL, "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		cpu.report()
		reportRate(b, rc)
	})

	b.Run("engine", func(b *testing.B) {
		rc := benchReceiver(b)
		srv := redistest.Start(b)
		rdb := srv.Client(b)
		ctx := context.Background()
		// The harness syncs the AOF on every write, for crash tests; measure
		// with Redis's production default instead.
		if err := rdb.ConfigSet(ctx, "appendfsync", "everysec").Err(); err != nil {
			b.Fatal(err)
		}
		doc := fmt.Sprintf(`{"url":%q,"webhookId":"bench","secretHash":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","data":%s}`, rc.URL, body)
		for start := 0; start < b.N; start += 1000 {
			pipe := rdb.Pipeline()
			for range min(1000, b.N-start) {
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: "hooks", Values: []any{sendhooks.StreamField, doc}})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		cfg := Default()
		cfg.Redis.Address = srv.Addr()
		cfg.NumWorkers, cfg.MaxPerHost = workers, workers
		cfg.AllowPrivateNetworks = true
		cfg.ConsumerName = "bench"
		cfg.LogLevel = "error"
		engineRdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: workers + 4})
		defer engineRdb.Close()
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)

		cpu := startCPU(b, rdb)
		b.ResetTimer()
		go func() { done <- New(cfg, engineRdb, discardLogger()).Run(runCtx) }()
		for {
			n, err := rdb.XLen(ctx, cfg.StatusStream).Result()
			if err != nil {
				b.Fatal(err)
			}
			if n >= int64(b.N) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		b.StopTimer()
		cpu.report()
		stop()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		reportRate(b, rc)
	})
}

func benchReceiver(b *testing.B) *countingReceiver {
	rc := &countingReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rc.n.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(rc.Close)
	return rc
}

// countingReceiver is the cheapest receiver that still reads every body.
type countingReceiver struct {
	*httptest.Server
	n atomic.Int64
}

func reportRate(b *testing.B, rc *countingReceiver) {
	if got := rc.n.Load(); got < int64(b.N) {
		b.Fatalf("receiver got %d requests, want at least %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// cpuMeter measures CPU time spent during a benchmark, by this process
// (engine or client, and the receiver) and by redis-server, per delivery.
// Unlike throughput it hardly depends on what else the machine is doing.
type cpuMeter struct {
	b         *testing.B
	rdb       *redis.Client // nil: no Redis in this measurement
	proc, srv time.Duration
}

func startCPU(b *testing.B, rdb *redis.Client) *cpuMeter {
	m := &cpuMeter{b: b, rdb: rdb}
	m.proc, m.srv = processCPU(b), redisCPU(b, rdb)
	return m
}

func (m *cpuMeter) report() {
	n := float64(m.b.N)
	m.b.ReportMetric(float64((processCPU(m.b)-m.proc).Microseconds())/n, "cpu-µs/delivery")
	if m.rdb != nil {
		m.b.ReportMetric(float64((redisCPU(m.b, m.rdb)-m.srv).Microseconds())/n, "redis-cpu-µs/delivery")
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is redis-server's CPU time so far.
func redisCPU(b *testing.B, rdb *redis.Client) time.Duration {
	if rdb == nil {
		return 0
	}
	d, err := redisserver.CPU(context.Background(), rdb)
	if err != nil {
		b.Fatal(err)
	}
	return d
}
