package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/engine"
	"github.com/sendhooks/sendhooks/internal/redisserver"
)

// EngineOptions sizes the engine's measurements. The engine itself runs on
// its defaults (see benchSettings): how many workers it has, and so how
// many requests the bare client makes at once, is the engine's default.
type EngineOptions struct {
	Jobs            int           // deliveries per throughput run
	Rounds          int           // rounds of each comparison, latency and isolation run; medians are reported
	Hosts           int           // receiver hosts of the many-hosts comparison (127.0.0.1 to 127.0.0.Hosts)
	LatencyRate     int           // jobs per second of the latency run
	LatencyDuration time.Duration // how long the latency run sends
	Backlog         int           // jobs queued for the memory measurement
	BacklogRun      time.Duration // how long the engine works on the backlog while its memory is read
	IsolationJobs   int           // jobs to the fast receiver in each isolation run (as many go to the slow one)
	SlowDelay       time.Duration // the slow receiver's time per request
	CPUProfile      string        // where the engine writes a CPU profile of the last one-host throughput run; "" for none
	Steps           []string      // the measurements to make, of EngineSteps; none for all
	Progress        io.Writer     // a line per phase
}

// engineSteps are the engine's measurements, in the order they run, each
// with the rows of the table it fills.
var engineSteps = []struct {
	name string
	run  func(*engineBench, context.Context, *EngineResult) error
	rows func(*EngineResult) []row
}{
	{"one-host", (*engineBench).throughput, (*EngineResult).oneHostRows}, // with CPU, allocations and extra stream entries per delivery
	{"hosts", (*engineBench).manyHosts, (*EngineResult).hostsRows},
	{"proxy", (*engineBench).proxied, (*EngineResult).proxyRows},
	{"latency", (*engineBench).latency, (*EngineResult).latencyRows},
	{"memory", (*engineBench).backlog, (*EngineResult).memoryRows},
	{"isolation", (*engineBench).isolation, (*EngineResult).isolationRows},
}

// EngineSteps names the engine's measurements, in the order they run:
// throughput to one receiver host (with CPU, allocations and extra stream
// entries per delivery), to many hosts, through a proxy; latency at a
// steady rate; memory with a backlog; isolation from a slow receiver.
func EngineSteps() []string {
	names := make([]string, len(engineSteps))
	for i, s := range engineSteps {
		names[i] = s.name
	}
	return names
}

// ParseEngineSteps reads a comma-separated list of EngineSteps; "" is all
// of them (nil).
func ParseEngineSteps(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var steps []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if err := checkStep(name); err != nil {
			return nil, err
		}
		steps = append(steps, name)
	}
	return steps, nil
}

func checkStep(name string) error {
	if !slices.Contains(EngineSteps(), name) {
		return fmt.Errorf("no engine measurement is called %q: want some of %s", name, strings.Join(EngineSteps(), ", "))
	}
	return nil
}

// EngineResult is what the engine's measurements came to.
type EngineResult struct {
	// The engine's configuration, as it loaded it: its defaults.
	Workers, MaxPerHost int      // MaxPerHost 0: no per-host cap
	Steps               []string // the measurements made, of EngineSteps

	// One receiver host.
	Bare, Engine []float64 // requests or deliveries per second, one per round
	// Entries the jobs stream gained beyond the jobs written to it, per
	// delivered job (jobs that went round through the retry set); one per
	// round.
	ExtraEntries []float64
	// CPU time per 1,000 deliveries in the one-host runs (medians).
	EngineCPU, RedisCPU time.Duration
	AllocsPerDelivery   float64 // heap allocations of the engine process per delivery

	// Hosts receiver hosts, jobs spread evenly.
	Hosts                int
	ManyBare, ManyEngine []float64
	// The fewest and the most requests one of the hosts had over the
	// many-hosts runs, bare client and engine together.
	ManyLeast, ManyMost int64

	// One receiver host behind a forward proxy on loopback.
	ProxyBare, ProxyEngine []float64
	// ProxyCarried is how many of each round's engine requests the proxy
	// carried, of ProxyJobs; 0 means the engine went direct.
	ProxyCarried []int64
	ProxyJobs    int

	Latency          []Percentiles // one per round
	LatencyJobs      int           // per round
	LatencyRate      int           // jobs per second
	BacklogJobs      int
	BacklogPeakRSS   int64 // the engine's peak resident set with the backlog queued, bytes
	BacklogDelivered int   // deliveries made while it was measured
	// The fast receiver's deliveries/s alone, and with as many jobs again
	// for the slow one; one per round.
	IsolationAlone, IsolationWithSlow []float64
	// CPU time of the engine and of redis-server per delivery to the fast
	// receiver, alone and beside the slow one (medians of the rounds):
	// what reading past the slow receiver's jobs costs.
	IsolationCPUAlone, IsolationCPUWithSlow time.Duration
}

// Share is the engine's median rate as a share of the bare client's, with
// one receiver host.
func (r EngineResult) Share() float64 { return median(r.Engine) / median(r.Bare) }

// ManyShare is Share with the jobs spread over Hosts receiver hosts.
func (r EngineResult) ManyShare() float64 { return median(r.ManyEngine) / median(r.ManyBare) }

// ProxyShare is Share with the receiver behind the proxy.
func (r EngineResult) ProxyShare() float64 { return median(r.ProxyEngine) / median(r.ProxyBare) }

// IsolationCost is the fast receiver's loss of throughput to the slow
// one, between the medians of the rounds.
func (r EngineResult) IsolationCost() float64 {
	return 1 - median(r.IsolationWithSlow)/median(r.IsolationAlone)
}

// MedianLatency is the median over the rounds of each percentile.
func (r EngineResult) MedianLatency() Percentiles {
	pick := func(f func(Percentiles) time.Duration) time.Duration {
		v := make([]float64, len(r.Latency))
		for i, p := range r.Latency {
			v[i] = float64(f(p))
		}
		return time.Duration(median(v))
	}
	return Percentiles{
		P50: pick(func(p Percentiles) time.Duration { return p.P50 }),
		P95: pick(func(p Percentiles) time.Duration { return p.P95 }),
		P99: pick(func(p Percentiles) time.Duration { return p.P99 }),
		Max: pick(func(p Percentiles) time.Duration { return p.Max }),
	}
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
// redis-server, and the engine's configuration, which names the streams.
type engineBench struct {
	o    EngineOptions
	rdb  *redis.Client
	addr string
	cfg  engine.Config
}

// Engine runs the engine's measurements, each with the engine on its
// defaults: throughput against the bare client with one receiver host,
// with many and through a proxy; CPU, allocations and extra stream entries
// per delivery; latency at a steady rate; memory with a backlog; and
// isolation from a slow receiver. o.Steps, when it names any, limits them
// to those; a name not in EngineSteps is an error, before anything runs.
func Engine(ctx context.Context, o EngineOptions) (EngineResult, error) {
	var res EngineResult
	for _, name := range o.Steps {
		if err := checkStep(name); err != nil {
			return res, err
		}
	}
	if o.CPUProfile != "" && len(o.Steps) > 0 && !slices.Contains(o.Steps, "one-host") {
		return res, errors.New(`a CPU profile is of the "one-host" step, which is not among the steps asked`)
	}
	srv, err := redisserver.Start(ctx)
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 16})
	defer rdb.Close()
	b := &engineBench{o: o, rdb: rdb, addr: srv.Addr()}
	if b.cfg, err = engineConfig(engineSetup{redis: b.addr}); err != nil {
		return res, err
	}
	res.Workers, res.MaxPerHost = b.cfg.NumWorkers, b.cfg.MaxPerHost
	b.progress("engine defaults: %d workers, per-host cap %s", res.Workers, perHostCap(res.MaxPerHost))

	for _, step := range engineSteps {
		if len(o.Steps) > 0 && !slices.Contains(o.Steps, step.name) {
			continue
		}
		if err := step.run(b, ctx, &res); err != nil {
			return res, err
		}
		res.Steps = append(res.Steps, step.name)
	}
	return res, nil
}

func (b *engineBench) progress(format string, args ...any) {
	fmt.Fprintf(b.o.Progress, format+"\n", args...)
}

// setup is the next engine run's, on clean streams.
func (b *engineBench) setup(ctx context.Context) (engineSetup, error) {
	return engineSetup{redis: b.addr}, b.cleanup(ctx)
}

// cleanup drops the engine's keys, so that each run starts from empty
// streams and runs do not pile up in Redis's memory. Runs also defer it,
// ignoring its error: the next run clears the streams again and reports
// a failure.
func (b *engineBench) cleanup(ctx context.Context) error {
	err := b.rdb.Del(ctx, b.cfg.JobStream, b.cfg.StatusStream, sendhooks.RetrySet(b.cfg.JobStream),
		sendhooks.DeadLetterStream(b.cfg.JobStream)).Err()
	if err != nil {
		return fmt.Errorf("clear the streams: %w", err)
	}
	return nil
}

// spread gives job i's document with the jobs spread evenly over urls.
func spread(urls []string, id string) func(int) string {
	return func(i int) string { return jobDoc(urls[i%len(urls)], id) }
}

// compared is one comparison of the engine with the bare client.
type compared struct {
	bare, engine []float64
	figures      []runFigures
}

// compare alternates bare-client and engine runs, Rounds of each, so that
// both see the same machine: Jobs requests spread evenly over urls,
// through proxy unless it is "". profile, when set, gets the last engine
// run's CPU profile.
func (b *engineBench) compare(ctx context.Context, name string, urls []string, proxy, profile string) (compared, error) {
	var c compared
	for round := 1; round <= b.o.Rounds; round++ {
		rate, err := runBareChild(ctx, urls, proxy, b.o.Jobs, b.cfg.NumWorkers)
		if err != nil {
			return c, err
		}
		c.bare = append(c.bare, rate)
		b.progress("%s, round %d/%d: bare client %.0f requests/s", name, round, b.o.Rounds, rate)

		s := engineSetup{redis: b.addr, proxy: proxy}
		if round == b.o.Rounds {
			s.profile = profile
		}
		m, err := b.engineRun(ctx, s, spread(urls, "bench"))
		if err != nil {
			return c, err
		}
		c.engine = append(c.engine, m.rate)
		c.figures = append(c.figures, m)
		b.progress("%s, round %d/%d: engine %.0f deliveries/s (%.2f of the bare client)", name, round, b.o.Rounds, m.rate, m.rate/rate)
	}
	return c, nil
}

// throughput compares the engine with the bare client on one receiver
// host, and measures the engine's CPU time, allocations and extra stream
// entries per delivery.
func (b *engineBench) throughput(ctx context.Context, res *EngineResult) error {
	rc, err := startReceiver("127.0.0.1", 0, 0)
	if err != nil {
		return err
	}
	defer rc.close()
	c, err := b.compare(ctx, "one host", []string{rc.url}, "", b.o.CPUProfile)
	if err != nil {
		return err
	}
	res.Bare, res.Engine = c.bare, c.engine
	var engineCPU, redisCPU, allocs []float64
	for _, m := range c.figures {
		engineCPU = append(engineCPU, m.engineCPU)
		redisCPU = append(redisCPU, m.redisCPU)
		allocs = append(allocs, m.allocs)
		res.ExtraEntries = append(res.ExtraEntries, m.extraEntries)
	}
	res.EngineCPU = time.Duration(median(engineCPU) * 1000)
	res.RedisCPU = time.Duration(median(redisCPU) * 1000)
	res.AllocsPerDelivery = median(allocs)
	return nil
}

// manyHosts compares the engine with the bare client on Hosts receiver
// hosts, the jobs spread evenly over them.
func (b *engineBench) manyHosts(ctx context.Context, res *EngineResult) error {
	rs, err := startReceivers(b.o.Hosts)
	if err != nil {
		return err
	}
	defer rs.close()
	c, err := b.compare(ctx, fmt.Sprintf("%d hosts", b.o.Hosts), rs.urls(), "", "")
	if err != nil {
		return err
	}
	res.Hosts, res.ManyBare, res.ManyEngine = b.o.Hosts, c.bare, c.engine
	res.ManyLeast, res.ManyMost = rs[0].requests.Load(), rs[0].requests.Load()
	for _, rc := range rs[1:] {
		res.ManyLeast, res.ManyMost = min(res.ManyLeast, rc.requests.Load()), max(res.ManyMost, rc.requests.Load())
	}
	return nil
}

// proxied compares the engine with the bare client on one receiver host
// behind a forward proxy on loopback: the bare client is given the proxy,
// the engine HTTP_PROXY. The receiver counts what the proxy carried; an
// engine that went direct shows as 0 carried, and is reported so rather
// than stopping the benchmark.
func (b *engineBench) proxied(ctx context.Context, res *EngineResult) error {
	rc, err := startReceiver("127.0.0.1", 0, 0)
	if err != nil {
		return err
	}
	defer rc.close()
	proxy, err := startProxy(2 * b.cfg.NumWorkers)
	if err != nil {
		return err
	}
	defer proxy.close()
	url := "http://" + net.JoinHostPort(proxiedHost, rc.port) + "/hook"
	res.ProxyJobs = b.o.Jobs
	for round := 1; round <= b.o.Rounds; round++ {
		before := rc.proxied.Load()
		rate, err := runBareChild(ctx, []string{url}, proxy.url, b.o.Jobs, b.cfg.NumWorkers)
		if err != nil {
			return err
		}
		// The bare client is told to use the proxy: if the proxy did not
		// carry its requests, the benchmark itself is wrong.
		if carried := rc.proxied.Load() - before; carried != int64(b.o.Jobs) {
			return fmt.Errorf("the proxy carried %d of the bare client's %d requests", carried, b.o.Jobs)
		}
		res.ProxyBare = append(res.ProxyBare, rate)
		b.progress("proxy, round %d/%d: bare client %.0f requests/s", round, b.o.Rounds, rate)

		before = rc.proxied.Load()
		m, err := b.engineRun(ctx, engineSetup{redis: b.addr, proxy: proxy.url}, spread([]string{url}, "bench"))
		if err != nil {
			return err
		}
		carried := rc.proxied.Load() - before
		res.ProxyEngine = append(res.ProxyEngine, m.rate)
		res.ProxyCarried = append(res.ProxyCarried, carried)
		b.progress("proxy, round %d/%d: engine %.0f deliveries/s (%.2f of the bare client); the proxy carried %d of its %d requests",
			round, b.o.Rounds, m.rate, m.rate/rate, carried, b.o.Jobs)
		if carried == 0 {
			b.progress("proxy: the proxy carried 0 requests: the engine went direct (it did not take HTTP_PROXY for %s)", url)
		}
	}
	return nil
}

// bareClient is the ceiling: workers goroutines POST the job's payload
// with one keep-alive client until n requests are made, request i to
// urls[i % len(urls)], through proxy unless it is "". It returns their
// rate.
func bareClient(urls []string, proxy string, n, workers int) (float64, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	if proxy != "" {
		pu, err := neturl.Parse(proxy)
		if err != nil {
			return 0, fmt.Errorf("bare client: proxy %q: %w", proxy, err)
		}
		tr.Proxy = http.ProxyURL(pu)
	}
	client := &http.Client{Transport: tr}
	defer client.CloseIdleConnections()
	body := []byte(payload)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				resp, err := client.Post(urls[i%int64(len(urls))], "application/json", bytes.NewReader(body))
				if err != nil {
					failed.Store(&err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err := fmt.Errorf("%s answered %s", urls[i%int64(len(urls))], resp.Status)
					failed.Store(&err)
					return
				}
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
	extraEntries        float64 // jobs-stream entries beyond the jobs written, per delivery
}

// engineRun preloads Jobs jobs made by doc, starts the engine and times it
// from ready to the last status event.
func (b *engineBench) engineRun(ctx context.Context, s engineSetup, doc func(int) string) (runFigures, error) {
	var f runFigures
	if err := b.cleanup(ctx); err != nil {
		return f, err
	}
	defer b.cleanup(ctx)
	if err := b.preload(ctx, b.o.Jobs, doc); err != nil {
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
	before, err := b.rdb.XLen(ctx, b.cfg.StatusStream).Result()
	if err != nil {
		return f, err
	}
	first, err := b.sample(ctx, p)
	if err != nil {
		return f, err
	}
	if err := b.waitStatuses(ctx, int64(b.o.Jobs)); err != nil {
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
	if err := p.stop(); err != nil {
		return f, err
	}
	// Every job has its final status: anything the jobs stream gained
	// beyond the preloaded jobs went round through Redis again. The count
	// of entries ever added survives the engine's trimming of the stream.
	info, err := b.rdb.XInfoStream(ctx, b.cfg.JobStream).Result()
	if err != nil {
		return f, fmt.Errorf("read the jobs stream's entries-added: %w", err)
	}
	if info.EntriesAdded < int64(b.o.Jobs) {
		return f, fmt.Errorf("the jobs stream reports %d entries added for %d jobs written: redis-server 7.0 or later is needed", info.EntriesAdded, b.o.Jobs)
	}
	f.extraEntries = float64(info.EntriesAdded-int64(b.o.Jobs)) / float64(b.o.Jobs)
	return f, nil
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
func (b *engineBench) waitStatuses(ctx context.Context, n int64) error {
	var got int64
	err := pollUntil(ctx, func() (bool, error) {
		var err error
		got, err = b.rdb.XLen(ctx, b.cfg.StatusStream).Result()
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

// preload writes n jobs into the jobs stream, a thousand per round trip.
func (b *engineBench) preload(ctx context.Context, n int, doc func(i int) string) error {
	stream := b.cfg.JobStream
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
// from just before each XADD to the job's arrival at the receiver; Rounds
// runs.
func (b *engineBench) latency(ctx context.Context, res *EngineResult) error {
	n := int(float64(b.o.LatencyRate) * b.o.LatencyDuration.Seconds())
	res.LatencyJobs, res.LatencyRate = n, b.o.LatencyRate
	for round := 1; round <= b.o.Rounds; round++ {
		p, err := b.latencyRun(ctx, n)
		if err != nil {
			return err
		}
		res.Latency = append(res.Latency, p)
		b.progress("latency, round %d/%d: %d jobs at %d/s: p50 %v, p99 %v", round, b.o.Rounds, n, b.o.LatencyRate, p.P50, p.P99)
	}
	return nil
}

func (b *engineBench) latencyRun(ctx context.Context, n int) (Percentiles, error) {
	rc, err := startReceiver("127.0.0.1", 0, n)
	if err != nil {
		return Percentiles{}, err
	}
	defer rc.close()
	s, err := b.setup(ctx)
	if err != nil {
		return Percentiles{}, err
	}
	defer b.cleanup(ctx)
	p, err := startEngine(ctx, s)
	if err != nil {
		return Percentiles{}, err
	}
	defer p.kill()

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
		err := b.rdb.XAdd(ctx, &redis.XAddArgs{Stream: b.cfg.JobStream,
			Values: []any{sendhooks.StreamField, jobDoc(rc.url, latencyPrefix+strconv.Itoa(i))}}).Err()
		if err != nil {
			return Percentiles{}, fmt.Errorf("send a latency job: %w", err)
		}
	}
	if err := b.waitStatuses(ctx, int64(n)); err != nil {
		return Percentiles{}, err
	}
	lat := make([]time.Duration, n)
	for i := range n {
		at := rc.arrivals[i].Load()
		if at == 0 {
			return Percentiles{}, fmt.Errorf("latency job %d has a status event but never reached the receiver", i)
		}
		lat[i] = time.Duration(at - sent[i])
	}
	return percentiles(lat), p.stop()
}

// backlog queues the backlog, lets the engine work on it for a while and
// reads its peak memory.
func (b *engineBench) backlog(ctx context.Context, res *EngineResult) error {
	rc, err := startReceiver("127.0.0.1", 0, 0)
	if err != nil {
		return err
	}
	defer rc.close()
	s, err := b.setup(ctx)
	if err != nil {
		return err
	}
	defer b.cleanup(ctx)
	b.progress("memory: queueing %d jobs", b.o.Backlog)
	if err := b.preload(ctx, b.o.Backlog, func(int) string { return jobDoc(rc.url, "backlog") }); err != nil {
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
	res.BacklogJobs, res.BacklogPeakRSS, res.BacklogDelivered = b.o.Backlog, st.peakRSS, int(rc.requests.Load())
	b.progress("memory: peak RSS %.1f MiB after %d deliveries", float64(st.peakRSS)/(1<<20), res.BacklogDelivered)
	return p.stop()
}

// isolation measures the fast receiver's throughput alone, then with as
// many jobs again, interleaved, for a receiver that takes SlowDelay per
// request; Rounds rounds of both, so that both see the same machine. The
// two receivers are two hosts: 127.0.0.1 and 127.0.0.2.
func (b *engineBench) isolation(ctx context.Context, res *EngineResult) error {
	fast, err := startReceiver("127.0.0.1", 0, 0)
	if err != nil {
		return err
	}
	defer fast.close()
	slow, err := startReceiver("127.0.0.2", b.o.SlowDelay, 0)
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
	var cpuAlone, cpuWithSlow []float64
	for round := 1; round <= b.o.Rounds; round++ {
		alone, err := b.fastRate(ctx, fast, n, n, func(int) string { return jobDoc(fast.url, "fast") })
		if err != nil {
			return err
		}
		withSlow, err := b.fastRate(ctx, fast, 2*n, n, mixed)
		if err != nil {
			return err
		}
		res.IsolationAlone = append(res.IsolationAlone, alone.rate)
		res.IsolationWithSlow = append(res.IsolationWithSlow, withSlow.rate)
		cpuAlone = append(cpuAlone, float64(alone.cpu))
		cpuWithSlow = append(cpuWithSlow, float64(withSlow.cpu))
		b.progress("isolation round %d/%d: fast receiver alone %.0f deliveries/s (%v CPU each), beside the slow one %.0f (%v CPU each)",
			round, b.o.Rounds, alone.rate, alone.cpu.Round(time.Microsecond), withSlow.rate, withSlow.cpu.Round(time.Microsecond))
	}
	res.IsolationCPUAlone = time.Duration(median(cpuAlone))
	res.IsolationCPUWithSlow = time.Duration(median(cpuWithSlow))
	return nil
}

// fastRun is what one isolation run measured.
type fastRun struct {
	rate float64       // the fast receiver's deliveries per second
	cpu  time.Duration // the engine's and redis-server's CPU time per fast delivery
}

// fastRate preloads n jobs made by doc, fastJobs of them for the fast
// receiver, starts the engine and measures the fast receiver's requests
// per second until it has had all of its jobs, and the CPU time the
// engine and redis-server spent meanwhile per fast request.
func (b *engineBench) fastRate(ctx context.Context, fast *receiver, n, fastJobs int, doc func(int) string) (fastRun, error) {
	var r fastRun
	s, err := b.setup(ctx)
	if err != nil {
		return r, err
	}
	defer b.cleanup(ctx)
	if err := b.preload(ctx, n, doc); err != nil {
		return r, err
	}
	want := fast.requests.Load() + int64(fastJobs)
	p, err := startEngine(ctx, s)
	if err != nil {
		return r, err
	}
	defer p.kill()
	// Jobs delivered while the engine was getting ready are left out.
	before := fast.requests.Load()
	start := time.Now()
	first, err := b.sample(ctx, p)
	if err != nil {
		return r, err
	}
	err = pollUntil(ctx, func() (bool, error) { return fast.requests.Load() >= want, nil })
	if err != nil {
		return r, fmt.Errorf("the fast receiver got %d of %d jobs: %w", fast.requests.Load()-(want-int64(fastJobs)), fastJobs, err)
	}
	elapsed := time.Since(start)
	last, err := b.sample(ctx, p)
	if err != nil {
		return r, err
	}
	delivered := float64(want - before)
	r.rate = delivered / elapsed.Seconds()
	r.cpu = time.Duration(float64(last.engineCPU-first.engineCPU+last.redisCPU-first.redisCPU) / delivered)
	return r, p.stop()
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
