package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/redisserver"
)

// EngineOptions sizes the engine's measurements.
type EngineOptions struct {
	Jobs            int           // deliveries per throughput run
	Rounds          int           // pairs of bare-client and engine runs; medians are reported
	Workers         int           // engine workers, and the bare client's concurrent requests
	LatencyRate     int           // jobs per second of the latency run
	LatencyDuration time.Duration // how long the latency run sends
	Backlog         int           // jobs queued for the memory measurement
	BacklogRun      time.Duration // how long the engine works on the backlog while its memory is read
	IsolationJobs   int           // jobs to the fast receiver in each isolation run (as many go to the slow one)
	SlowDelay       time.Duration // the slow receiver's time per request
	CPUProfile      string        // where the engine writes a CPU profile of the last throughput run; "" for none
	Progress        io.Writer     // a line per phase
}

// EngineResult is what the engine's measurements came to.
type EngineResult struct {
	Bare, Engine []float64 // requests or deliveries per second, one per round
	// CPU time per 1,000 deliveries in the throughput runs (medians).
	EngineCPU, RedisCPU time.Duration
	AllocsPerDelivery   float64 // heap allocations of the engine process per delivery
	Latency             Percentiles
	LatencyJobs         int
	BacklogPeakRSS      int64 // the engine's peak resident set with the backlog queued, bytes
	BacklogDelivered    int   // deliveries made while it was measured
	// The fast receiver's deliveries/s alone, and with as many jobs again
	// for the slow one; one per round.
	IsolationAlone, IsolationWithSlow []float64
}

// Share is the engine's median rate as a share of the bare client's.
func (r EngineResult) Share() float64 { return median(r.Engine) / median(r.Bare) }

// IsolationCost is the fast receiver's loss of throughput to the slow
// one, between the medians of the rounds.
func (r EngineResult) IsolationCost() float64 {
	return 1 - median(r.IsolationWithSlow)/median(r.IsolationAlone)
}

// Percentiles of a latency distribution.
type Percentiles struct{ P50, P95, P99, Max time.Duration }

// payload is every benchmark job's data: an order event of typical size.
const payload = `{"order_id":"abc123","amount":"100.00","currency":"USD","status":"processed"}`

// secret signs every job, so every delivery pays for its signature.
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func jobDoc(url, webhookID string) string {
	return fmt.Sprintf(`{"url":%q,"webhookId":%q,"secretHash":%q,"data":%s}`, url, webhookID, secret, payload)
}

// engineBench holds what the engine's measurements share: one
// redis-server, with a fresh pair of streams for each run.
type engineBench struct {
	o    EngineOptions
	rdb  *redis.Client
	addr string
	runs int
}

// Engine runs the engine's measurements: throughput against the bare
// client, CPU and allocations per delivery, latency at a steady rate,
// memory with a backlog, and isolation from a slow receiver.
func Engine(ctx context.Context, o EngineOptions) (EngineResult, error) {
	var res EngineResult
	srv, err := redisserver.Start(ctx)
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 16})
	defer rdb.Close()
	b := &engineBench{o: o, rdb: rdb, addr: srv.Addr()}

	steps := []func(context.Context, *EngineResult) error{b.throughput, b.latency, b.backlog, b.isolation}
	for _, step := range steps {
		if err := step(ctx, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (b *engineBench) progress(format string, args ...any) {
	fmt.Fprintf(b.o.Progress, format+"\n", args...)
}

// setup names a fresh pair of streams for the next run.
func (b *engineBench) setup() engineSetup {
	b.runs++
	return engineSetup{redis: b.addr, stream: "bench-" + strconv.Itoa(b.runs), workers: b.o.Workers}
}

// cleanup drops a run's keys so that runs do not pile up in Redis's memory.
func (b *engineBench) cleanup(ctx context.Context, s engineSetup) {
	b.rdb.Del(ctx, s.stream, s.statusStream(), sendhooks.RetrySet(s.stream), sendhooks.DeadLetterStream(s.stream))
}

// throughput alternates bare-client and engine runs, so that both see the
// same machine, and measures the engine's CPU time and allocations.
func (b *engineBench) throughput(ctx context.Context, res *EngineResult) error {
	rc, err := startReceiver(0, 0)
	if err != nil {
		return err
	}
	defer rc.close()
	var engineCPU, redisCPU, allocs []float64
	for round := 1; round <= b.o.Rounds; round++ {
		rate, err := runBareChild(ctx, rc.url, b.o.Jobs, b.o.Workers)
		if err != nil {
			return err
		}
		res.Bare = append(res.Bare, rate)
		b.progress("round %d/%d: bare client %.0f requests/s", round, b.o.Rounds, rate)

		profile := ""
		if round == b.o.Rounds {
			profile = b.o.CPUProfile
		}
		m, err := b.engineRun(ctx, rc, profile)
		if err != nil {
			return err
		}
		res.Engine = append(res.Engine, m.rate)
		engineCPU = append(engineCPU, m.engineCPU)
		redisCPU = append(redisCPU, m.redisCPU)
		allocs = append(allocs, m.allocs)
		b.progress("round %d/%d: engine %.0f deliveries/s (%.2f of the bare client)", round, b.o.Rounds, m.rate, m.rate/rate)
	}
	res.EngineCPU = time.Duration(median(engineCPU) * 1000)
	res.RedisCPU = time.Duration(median(redisCPU) * 1000)
	res.AllocsPerDelivery = median(allocs)
	return nil
}

// bareClient is the ceiling: workers goroutines POST the job's payload
// to url with one keep-alive client until n requests are made. It returns
// their rate.
func bareClient(url string, n, workers int) (float64, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	body := []byte(payload)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					failed.Store(&err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return 0, fmt.Errorf("bare client: %w", *err)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// runFigures is one engine throughput run.
type runFigures struct {
	rate                float64
	engineCPU, redisCPU float64 // per delivery, nanoseconds
	allocs              float64 // per delivery
}

// engineRun preloads the jobs, starts the engine and times it from ready
// to the last status event.
func (b *engineBench) engineRun(ctx context.Context, rc *receiver, profile string) (runFigures, error) {
	var f runFigures
	s := b.setup()
	// As many requests at the receiver as the bare client makes.
	s.perHost, s.profile = b.o.Workers, profile
	defer b.cleanup(ctx, s)
	if err := b.preload(ctx, s.stream, b.o.Jobs, func(int) string { return jobDoc(rc.url, "bench") }); err != nil {
		return f, err
	}
	p, err := startEngine(ctx, s)
	if err != nil {
		return f, err
	}
	defer p.kill()
	// The engine may have delivered a few jobs while it was getting ready:
	// those are left out of the rate, and of the CPU time.
	start := time.Now()
	before, err := b.rdb.XLen(ctx, s.statusStream()).Result()
	if err != nil {
		return f, err
	}
	first, err := b.sample(ctx, p)
	if err != nil {
		return f, err
	}
	if err := b.waitStatuses(ctx, s, int64(b.o.Jobs)); err != nil {
		return f, err
	}
	elapsed := time.Since(start)
	last, err := b.sample(ctx, p)
	if err != nil {
		return f, err
	}
	n := float64(int64(b.o.Jobs) - before)
	f.rate = n / elapsed.Seconds()
	f.engineCPU = float64(last.engineCPU-first.engineCPU) / n
	f.redisCPU = float64(last.redisCPU-first.redisCPU) / n
	f.allocs = (last.mallocs - first.mallocs) / n
	return f, p.stop()
}

// sample is what the engine and Redis have used so far.
type sample struct {
	engineCPU, redisCPU time.Duration
	mallocs             float64
}

func (b *engineBench) sample(ctx context.Context, p *engineProcess) (sample, error) {
	var s sample
	st, err := readProcStats(p.cmd.Process.Pid)
	if err != nil {
		return s, err
	}
	if s.redisCPU, err = redisserver.CPU(ctx, b.rdb); err != nil {
		return s, err
	}
	s.mallocs, err = p.mallocs()
	s.engineCPU = st.cpu
	return s, err
}

// waitStatuses waits until the status stream holds n events.
func (b *engineBench) waitStatuses(ctx context.Context, s engineSetup, n int64) error {
	var got int64
	err := pollUntil(ctx, func() (bool, error) {
		var err error
		got, err = b.rdb.XLen(ctx, s.statusStream()).Result()
		if err != nil {
			return false, fmt.Errorf("read the status stream's length: %w", err)
		}
		return got >= n, nil
	})
	if err != nil {
		return fmt.Errorf("%d of %d status events: %w", got, n, err)
	}
	return nil
}

// pollUntil checks done every few milliseconds, cheap next to the work it
// waits for and a bound on the timing's resolution, until it holds, fails,
// or ten minutes have passed.
func pollUntil(ctx context.Context, done func() (bool, error)) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after 10 minutes")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// preload writes n jobs into stream, a thousand per round trip.
func (b *engineBench) preload(ctx context.Context, stream string, n int, doc func(i int) string) error {
	const chunk = 1000
	for start := 0; start < n; start += chunk {
		pipe := b.rdb.Pipeline()
		for i := start; i < min(start+chunk, n); i++ {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{sendhooks.StreamField, doc(i)}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("preload jobs: %w", err)
		}
		if n >= 100*chunk && (start/chunk)%100 == 99 {
			b.progress("  queued %d of %d jobs", start+chunk, n)
		}
	}
	return nil
}

// latency sends jobs at a steady rate to a running engine and measures
// from just before each XADD to the job's arrival at the receiver.
func (b *engineBench) latency(ctx context.Context, res *EngineResult) error {
	n := int(float64(b.o.LatencyRate) * b.o.LatencyDuration.Seconds())
	rc, err := startReceiver(0, n)
	if err != nil {
		return err
	}
	defer rc.close()
	s := b.setup()
	s.perHost = b.o.Workers
	defer b.cleanup(ctx, s)
	p, err := startEngine(ctx, s)
	if err != nil {
		return err
	}
	defer p.kill()
	b.progress("latency: %d jobs at %d/s", n, b.o.LatencyRate)

	sent := make([]int64, n)
	start := time.Now()
	interval := time.Second / time.Duration(b.o.LatencyRate)
	for i := range n {
		// Pace by the schedule, not by the previous send, so that a slow
		// XADD does not lower the rate.
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		sent[i] = time.Now().UnixNano()
		err := b.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.stream,
			Values: []any{sendhooks.StreamField, jobDoc(rc.url, latencyPrefix+strconv.Itoa(i))}}).Err()
		if err != nil {
			return fmt.Errorf("send a latency job: %w", err)
		}
	}
	if err := b.waitStatuses(ctx, s, int64(n)); err != nil {
		return err
	}
	lat := make([]time.Duration, n)
	for i := range n {
		at := rc.arrivals[i].Load()
		if at == 0 {
			return fmt.Errorf("latency job %d has a status event but never reached the receiver", i)
		}
		lat[i] = time.Duration(at - sent[i])
	}
	res.Latency, res.LatencyJobs = percentiles(lat), n
	b.progress("latency: p50 %v, p99 %v", res.Latency.P50, res.Latency.P99)
	return p.stop()
}

// backlog queues the backlog, lets the engine work on it for a while and
// reads its peak memory.
func (b *engineBench) backlog(ctx context.Context, res *EngineResult) error {
	rc, err := startReceiver(0, 0)
	if err != nil {
		return err
	}
	defer rc.close()
	s := b.setup()
	defer b.cleanup(ctx, s)
	b.progress("memory: queueing %d jobs", b.o.Backlog)
	if err := b.preload(ctx, s.stream, b.o.Backlog, func(int) string { return jobDoc(rc.url, "backlog") }); err != nil {
		return err
	}
	p, err := startEngine(ctx, s)
	if err != nil {
		return err
	}
	defer p.kill()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(b.o.BacklogRun):
	}
	st, err := readProcStats(p.cmd.Process.Pid)
	if err != nil {
		return err
	}
	res.BacklogPeakRSS, res.BacklogDelivered = st.peakRSS, int(rc.requests.Load())
	b.progress("memory: peak RSS %.1f MiB after %d deliveries", float64(st.peakRSS)/(1<<20), res.BacklogDelivered)
	return p.stop()
}

// isolation measures the fast receiver's throughput alone, then with as
// many jobs again, interleaved, for a receiver that takes SlowDelay per
// request; as many rounds of both as of the throughput runs, so that both
// see the same machine.
func (b *engineBench) isolation(ctx context.Context, res *EngineResult) error {
	fast, err := startReceiver(0, 0)
	if err != nil {
		return err
	}
	defer fast.close()
	slow, err := startReceiver(b.o.SlowDelay, 0)
	if err != nil {
		return err
	}
	defer slow.close()
	n := b.o.IsolationJobs
	mixed := func(i int) string {
		if i%2 == 1 {
			return jobDoc(slow.url, "slow")
		}
		return jobDoc(fast.url, "fast")
	}
	for round := 1; round <= b.o.Rounds; round++ {
		alone, err := b.fastRate(ctx, fast, n, n, func(int) string { return jobDoc(fast.url, "fast") })
		if err != nil {
			return err
		}
		withSlow, err := b.fastRate(ctx, fast, 2*n, n, mixed)
		if err != nil {
			return err
		}
		res.IsolationAlone = append(res.IsolationAlone, alone)
		res.IsolationWithSlow = append(res.IsolationWithSlow, withSlow)
		b.progress("isolation round %d/%d: fast receiver alone %.0f deliveries/s, beside the slow one %.0f",
			round, b.o.Rounds, alone, withSlow)
	}
	return nil
}

// fastRate preloads n jobs made by doc, fastJobs of them for the fast
// receiver, starts the engine and returns the fast receiver's requests per
// second until it has had all of its jobs.
func (b *engineBench) fastRate(ctx context.Context, fast *receiver, n, fastJobs int, doc func(int) string) (float64, error) {
	s := b.setup()
	defer b.cleanup(ctx, s)
	if err := b.preload(ctx, s.stream, n, doc); err != nil {
		return 0, err
	}
	want := fast.requests.Load() + int64(fastJobs)
	p, err := startEngine(ctx, s)
	if err != nil {
		return 0, err
	}
	defer p.kill()
	// Jobs delivered while the engine was getting ready are left out.
	before := fast.requests.Load()
	start := time.Now()
	err = pollUntil(ctx, func() (bool, error) { return fast.requests.Load() >= want, nil })
	if err != nil {
		return 0, fmt.Errorf("the fast receiver got %d of %d jobs: %w", fast.requests.Load()-(want-int64(fastJobs)), fastJobs, err)
	}
	rate := float64(want-before) / time.Since(start).Seconds()
	return rate, p.stop()
}

// percentiles sorts d and reads its percentiles by nearest rank.
func percentiles(d []time.Duration) Percentiles {
	slices.Sort(d)
	rank := func(q float64) time.Duration { return d[max(int(math.Ceil(q*float64(len(d))))-1, 0)] }
	return Percentiles{P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: d[len(d)-1]}
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
