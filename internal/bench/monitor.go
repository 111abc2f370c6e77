// Package bench measures the engine and the monitor for cmd/sendhooks-bench.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/ferret"
	"github.com/sendhooks/sendhooks/internal/redisserver"
)

// Stores the monitor benchmark runs on (MonitorOptions.Store).
const (
	StoreSQLite   = "sqlite"   // a file in a temporary directory, as SQLITE_PATH sets
	StoreFerretDB = "ferretdb" // the embedded FerretDB v1: a functional smoke test
	StoreMongoDB  = "mongodb"  // the server of MonitorOptions.MongoURI
)

// MonitorOptions says what Monitor measures.
type MonitorOptions struct {
	// Webhooks is how many webhooks the producer sends through the status
	// stream (1.4 status events each); the API is timed once the monitor
	// has stored them all. At least MinMonitorWebhooks.
	Webhooks int
	Requests int // how many times each request is timed, after one warm-up
	// Block is how many webhooks one ingest-rate figure covers; 100,000
	// when 0.
	Block int
	// Store is "sqlite" (the default when "") or "ferretdb"; "mongodb",
	// or "" with MongoURI set, measures on MongoURI.
	Store string
	// MongoURI is a MongoDB server to measure on, such as
	// mongodb://127.0.0.1:27017: Monitor works in a database of its own
	// there, which it drops when done.
	MongoURI string
	Progress io.Writer // one line per phase and per block ingested; nil discards
}

// MinMonitorWebhooks is the fewest webhooks Monitor works with: enough
// for every timed request to have something to find.
const MinMonitorWebhooks = 500

// defaultBlock is how many webhooks one ingest-rate figure covers.
const defaultBlock = 100_000

// MonitorResult is what Monitor measured.
type MonitorResult struct {
	Store    string // which store, as the table names it
	Webhooks int
	Events   int // status events ingested
	// Succeeded and Failed count the webhooks by final status.
	Succeeded, Failed int
	// Blocks is the ingest rate of each successive Block webhooks.
	Blocks []IngestBlock
	// IngestDuration runs from the first XADD until the monitor has
	// stored every event, found by polling its metrics every 50 ms.
	IngestDuration  time.Duration
	EventsPerSecond float64
	// MinLead is the fewest events the producer was ahead of ingestion at
	// any poll from its first XADD round until it was done: above 0,
	// ingestion never waited for events. -1 when no poll fell in between.
	MinLead int64
	// WriteFailures counts the batch writes the monitor retried.
	WriteFailures int
	// MonitorCPU is the monitor process's CPU time per 1,000 events
	// ingested.
	MonitorCPU time.Duration
	// RedisMemory is redis-server's used_memory with every event in the
	// status stream.
	RedisMemory int64
	// API has one row per request, in the order of monitorRequests.
	API []APITiming
	// PeakRSS is the monitor process's peak resident set (VmHWM) over the
	// whole run, ingestion and requests.
	PeakRSS int64
	// DBBytes and WALBytes are the sizes of the SQLite file and its
	// write-ahead log once every event is stored (SQLite only).
	DBBytes, WALBytes int64
}

// IngestBlock is the ingestion of one block of webhooks.
type IngestBlock struct {
	First, Last int // webhooks, counted from 1
	Events      int // status events written while they were created
	Duration    time.Duration
}

// Rate is the block's status events ingested per second.
func (b IngestBlock) Rate() float64 { return float64(b.Events) / b.Duration.Seconds() }

// Flatness is the last block's rate as a share of the first's.
func (r MonitorResult) Flatness() float64 {
	if len(r.Blocks) == 0 {
		return 0
	}
	return r.Blocks[len(r.Blocks)-1].Rate() / r.Blocks[0].Rate()
}

// APITiming is the response times of one request over Requests runs.
type APITiming struct {
	Name          string // e.g. "list, first page (limit 20)"
	Path          string // the request path with query
	Target        time.Duration
	P50, P95, Max time.Duration
}

// Polling intervals.
const (
	monitorPollInterval  = 50 * time.Millisecond // the monitor's metrics, during ingestion
	producerPollInterval = 10 * time.Millisecond // the producer, while it is far enough ahead
)

// Producer settings: events per pipelined XADD round, and how far the
// producer may run ahead of ingestion. The lead keeps the producer's work
// spread over the run, as an engine's would be, instead of all at its
// start, where it would slow the first block down.
const (
	monitorChunk = 1000
	producerLead = 50_000
)

// Monitor measures the monitor as a user runs it: it starts a throwaway
// redis-server and the monitor in a child process of its own (default
// configuration, the store of o), sends o.Webhooks webhooks' status events
// through the status stream while timing their ingestion block by block,
// then times the API's requests over HTTP on loopback, checking every
// answer against what was sent. It stops everything before it returns.
func Monitor(ctx context.Context, o MonitorOptions) (res MonitorResult, err error) {
	if o.Webhooks < MinMonitorWebhooks || o.Requests < 1 {
		return res, fmt.Errorf("want at least %d webhooks and 1 request, got %d and %d", MinMonitorWebhooks, o.Webhooks, o.Requests)
	}
	if o.Block == 0 {
		o.Block = defaultBlock
	}
	if o.Block < 1 {
		return res, fmt.Errorf("block %d: want at least 1 webhook", o.Block)
	}
	switch {
	case o.Store == "" && o.MongoURI != "":
		o.Store = StoreMongoDB
	case o.Store == "":
		o.Store = StoreSQLite
	}
	switch {
	case o.Store != StoreSQLite && o.Store != StoreFerretDB && o.Store != StoreMongoDB:
		return res, fmt.Errorf("-store %q: want %s or %s (or -mongodb-uri for MongoDB)", o.Store, StoreSQLite, StoreFerretDB)
	case o.Store == StoreMongoDB && o.MongoURI == "":
		return res, errors.New("-store mongodb needs -mongodb-uri")
	case o.Store != StoreMongoDB && o.MongoURI != "":
		return res, fmt.Errorf("-mongodb-uri and -store %s: give one", o.Store)
	}
	out := &lockedWriter{w: o.Progress}
	if o.Progress == nil {
		out.w = io.Discard
	}
	res.Webhooks = o.Webhooks

	fmt.Fprintln(out, "monitor: starting redis-server")
	rs, err := redisserver.Start(ctx)
	if err != nil {
		return res, fmt.Errorf("start redis-server: %w", err)
	}
	defer rs.Stop()
	st, err := openBenchStore(ctx, o, out)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, st.remove()) }()
	res.Store = st.label

	host, port, _ := strings.Cut(rs.Addr(), ":")
	env := map[string]string{
		"REDIS_HOST":    host,
		"REDIS_PORT":    port,
		"CONSUMER_NAME": "sendhooks-bench",
		"LOG_LEVEL":     "warn",
		"LOG_FORMAT":    "text",
	}
	for k, v := range st.env {
		env[k] = v
	}
	fmt.Fprintf(out, "monitor: starting the monitor process on %s\n", st.label)
	proc, err := startMonitor(ctx, env, out)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, proc.stop()) }()

	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	set := newOrderSet(o.Webhooks, time.Now())
	if err := ingest(ctx, &res, set, o.Block, rdb, proc, out); err != nil {
		return res, err
	}
	if info, err := rdb.Info(ctx, "memory").Result(); err == nil {
		res.RedisMemory = infoInt(info, "used_memory")
	}
	if st.sqlite != "" {
		res.DBBytes, res.WALBytes = fileSize(st.sqlite), fileSize(st.sqlite+"-wal")
		fmt.Fprintf(out, "monitor: SQLite file %s, write-ahead log %s\n", mb(res.DBBytes), mb(res.WALBytes))
	}

	client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Minute}
	defer client.CloseIdleConnections()
	reqs, err := monitorRequests(ctx, client, proc, set)
	if err != nil {
		return res, err
	}
	for _, r := range reqs {
		t, err := timeRequest(ctx, client, r, o.Requests)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(out, "monitor: %-45s p50 %v  p95 %v  max %v\n", t.Name,
			t.P50.Round(time.Microsecond), t.P95.Round(time.Microsecond), t.Max.Round(time.Microsecond))
		res.API = append(res.API, t)
	}
	ps, err := readProcStats(proc.cmd.Process.Pid)
	if err != nil {
		return res, err
	}
	res.PeakRSS = ps.peakRSS
	fmt.Fprintf(out, "monitor: the monitor process's peak RSS %s\n", mb(res.PeakRSS))
	return res, nil
}

// benchStore is the store the monitor process is given.
type benchStore struct {
	label  string            // for the table
	env    map[string]string // the monitor's settings that select it
	sqlite string            // the SQLite file, when it is one
	remove func() error      // removes the store and what it holds
}

// openBenchStore prepares the store o names: an SQLite file in a
// temporary directory, the embedded FerretDB with its files in one, or a
// database of its own on o.MongoURI.
func openBenchStore(ctx context.Context, o MonitorOptions, out io.Writer) (benchStore, error) {
	switch o.Store {
	case StoreSQLite:
		dir, err := os.MkdirTemp("", "sendhooks-bench-sqlite-")
		if err != nil {
			return benchStore{}, fmt.Errorf("directory for the SQLite file: %w", err)
		}
		path := filepath.Join(dir, "monitor.db")
		return benchStore{label: "SQLite", env: map[string]string{"SQLITE_PATH": path}, sqlite: path,
			remove: func() error { return os.RemoveAll(dir) }}, nil
	case StoreFerretDB:
		fmt.Fprintln(out, "monitor: starting the embedded MongoDB-wire server (FerretDB), a functional smoke test")
		dir, err := os.MkdirTemp("", "sendhooks-bench-ferretdb-")
		if err != nil {
			return benchStore{}, fmt.Errorf("data directory for FerretDB: %w", err)
		}
		fdb, err := ferret.Start(ctx, "127.0.0.1:0", dir)
		if err != nil {
			os.RemoveAll(dir)
			return benchStore{}, err
		}
		return benchStore{label: ferretLabel, env: map[string]string{"MONGODB_URI": "mongodb://" + fdb.Addr() + "/sendhooks"},
			remove: func() error { fdb.Stop(); return os.RemoveAll(dir) }}, nil
	}
	u, err := url.Parse(o.MongoURI)
	if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
		return benchStore{}, fmt.Errorf("-mongodb-uri %q: want a mongodb:// or mongodb+srv:// connection string", o.MongoURI)
	}
	db := "sendhooks_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	u.Path = "/" + db
	fmt.Fprintf(out, "monitor: measuring on %s, database %s (dropped when done)\n", u.Redacted(), db)
	client, err := mongo.Connect(options.Client().ApplyURI(u.String()).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return benchStore{}, fmt.Errorf("-mongodb-uri: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(ctx)
		return benchStore{}, fmt.Errorf("-mongodb-uri %s: %w", u.Redacted(), err)
	}
	return benchStore{label: "MongoDB", env: map[string]string{"MONGODB_URI": u.String()}, remove: func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err := client.Database(db).Drop(ctx)
		return errors.Join(err, client.Disconnect(ctx))
	}}, nil
}

// ferretLabel names the embedded FerretDB's figures wherever they appear.
const ferretLabel = "FerretDB, functional smoke test, not a MongoDB figure"

// ingest sends the status events of set through the status stream while
// the monitor process ingests them, and records the rate of each block of
// webhooks.
func ingest(ctx context.Context, res *MonitorResult, set *orderSet, block int, rdb *redis.Client, proc *monitorProcess, out io.Writer) error {
	ends := set.blockEnds(block)
	total := ends[len(ends)-1]
	res.Events = total
	for i := range set.n {
		if set.failed(i) {
			res.Failed++
		} else {
			res.Succeeded++
		}
	}
	cpu0, err := readProcStats(proc.cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "monitor: sending %d webhooks (%d status events) through %s\n", set.n, total, sendhooks.DefaultStatusStream)

	var produced, ingested atomic.Int64
	prodCtx, cancel := context.WithCancel(ctx)
	prodDone := make(chan error, 1)
	start := time.Now()
	go func() { prodDone <- set.produce(prodCtx, rdb, sendhooks.DefaultStatusStream, &produced, &ingested) }()
	defer func() {
		cancel()
		if prodDone != nil {
			<-prodDone
		}
	}()

	tick := time.NewTicker(monitorPollInterval)
	defer tick.Stop()
	res.MinLead = -1
	blockStart, done := start, 0
	for len(res.Blocks) < len(ends) {
		c, err := proc.counters(ctx)
		if err != nil {
			return err
		}
		if c.parseFailures > 0 {
			return fmt.Errorf("the monitor could not parse %d of the status events", c.parseFailures)
		}
		ingested.Store(int64(c.ingested))
		if p := produced.Load(); prodDone != nil && p > 0 { // from the first XADD round on
			if lead := p - int64(c.ingested); res.MinLead < 0 || lead < res.MinLead {
				res.MinLead = lead
			}
		}
		for len(res.Blocks) < len(ends) && c.ingested >= ends[len(res.Blocks)] {
			k, now := len(res.Blocks), time.Now()
			b := IngestBlock{First: k*block + 1, Last: min((k+1)*block, set.n), Events: ends[k] - done, Duration: now.Sub(blockStart)}
			res.Blocks = append(res.Blocks, b)
			ps, _ := readProcStats(proc.cmd.Process.Pid)
			fmt.Fprintf(out, "monitor: webhooks %d to %d ingested: %d events in %v, %.0f events/s (producer %d events ahead, monitor RSS %s)\n",
				b.First, b.Last, b.Events, b.Duration.Round(time.Millisecond), b.Rate(), produced.Load()-int64(c.ingested), mb(ps.rss))
			blockStart, done = now, ends[k]
		}
		if len(res.Blocks) == len(ends) {
			if c.ingested != total {
				return fmt.Errorf("the monitor ingested %d events, %d were sent", c.ingested, total)
			}
			res.WriteFailures = c.writeFailures
			break
		}
		select {
		case err := <-prodDone:
			prodDone = nil
			if err != nil {
				return err
			}
		case <-proc.done:
			return fmt.Errorf("the monitor process exited after ingesting %d of %d events: %v", c.ingested, total, proc.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("waiting for ingestion (%d of %d events): %w", c.ingested, total, ctx.Err())
		case <-tick.C:
		}
	}
	res.IngestDuration = time.Since(start)
	res.EventsPerSecond = float64(total) / res.IngestDuration.Seconds()
	cpu1, err := readProcStats(proc.cmd.Process.Pid)
	if err != nil {
		return err
	}
	res.MonitorCPU = (cpu1.cpu - cpu0.cpu) * 1000 / time.Duration(total)
	fmt.Fprintf(out, "monitor: ingested %d status events in %v: %.0f events/s; %d batch writes retried\n",
		total, res.IngestDuration.Round(time.Millisecond), res.EventsPerSecond, res.WriteFailures)
	return nil
}

// produce writes the status events of the set into stream in stream
// order, monitorChunk XADDs per pipelined round, staying at most
// producerLead events ahead of ingested.
func (s *orderSet) produce(ctx context.Context, rdb *redis.Client, stream string, produced, ingested *atomic.Int64) error {
	pipe := rdb.Pipeline()
	queued := 0
	var buf []byte
	flush := func() error {
		if queued == 0 {
			return nil
		}
		for produced.Load()-ingested.Load() > producerLead {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(producerPollInterval):
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("XADD status events into %s: %w", stream, err)
		}
		produced.Add(int64(queued))
		queued = 0
		return nil
	}
	for p := range s.positions() {
		err := s.at(p, func(i, attempt int) error {
			ev := s.event(i, attempt)
			buf = ev.AppendJSON(buf[:0])
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{sendhooks.StreamField, string(buf)}})
			if queued++; queued == monitorChunk {
				return flush()
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return flush()
}

// fileSize is the size of the file at path, 0 when there is none.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// infoInt reads a whole-number field of an INFO answer.
func infoInt(info, field string) int64 {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// mb shows a size in megabytes (10^6 bytes), the unit of the targets.
func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// timeRequest times GET r.url runs times after one warm-up, checking
// every answer.
func timeRequest(ctx context.Context, client *http.Client, r monitorRequest, runs int) (APITiming, error) {
	t := APITiming{Name: r.name, Path: r.path, Target: r.target}
	took := make([]time.Duration, 0, runs)
	for i := range runs + 1 {
		start := time.Now()
		body, err := apiGet(ctx, client, r.url)
		d := time.Since(start)
		if err == nil {
			err = r.check(body)
		}
		if err != nil {
			return t, fmt.Errorf("%s (GET %s): %w", r.name, r.path, err)
		}
		if i > 0 {
			took = append(took, d)
		}
	}
	pc := percentiles(took)
	t.P50, t.P95, t.Max = pc.P50, pc.P95, pc.Max
	return t, nil
}

// apiGet returns the body of a 200 answer to GET u.
func apiGet(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d, want 200: %.200s", resp.StatusCode, body)
	}
	return body, nil
}

// lockedWriter lets the monitor's log and the progress lines share a writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// monitorRows are the monitor's rows of the table.
func (m MonitorResult) rows() []row {
	ferret := m.Store == ferretLabel
	target := func(measure, result, tgt string, met bool) row {
		if ferret {
			return row{measure: measure, result: result, target: "none: " + ferretLabel}
		}
		return check(measure, result, tgt, met)
	}
	plain := func(measure, result string) row {
		if ferret {
			return row{measure: measure, result: result, target: "none: " + ferretLabel}
		}
		return row{measure: measure, result: result}
	}
	n := fmt.Sprintf("%d webhooks", m.Webhooks)
	lead := strconv.FormatInt(m.MinLead, 10)
	if m.MinLead < 0 {
		lead = "not measured: the producer was done before the first poll"
	}
	rows := []row{plain("monitor store", fmt.Sprintf("%s; %d webhooks, %d status events (%d success, %d failed)",
		m.Store, m.Webhooks, m.Events, m.Succeeded, m.Failed))}
	for _, b := range m.Blocks {
		rows = append(rows, plain(fmt.Sprintf("monitor ingest, webhooks %d to %d, events/s", b.First, b.Last),
			fmt.Sprintf("%.0f (%d events in %s)", b.Rate(), b.Events, secs(b.Duration))))
	}
	rows = append(rows,
		target("monitor ingest, all, events/s", fmt.Sprintf("%.0f (%d events in %s)", m.EventsPerSecond, m.Events, secs(m.IngestDuration)),
			fmt.Sprintf(">= %d", targetIngest), m.EventsPerSecond >= targetIngest),
		target("monitor ingest, last block / first block", fmt.Sprintf("%.2f", m.Flatness()),
			fmt.Sprintf("%.1f to %.1f", 1-targetFlat, 1+targetFlat), m.Flatness() >= 1-targetFlat && m.Flatness() <= 1+targetFlat),
		plain("producer's lead over ingestion while producing, fewest events", lead),
		plain("monitor CPU per 1,000 events ingested", ms(m.MonitorCPU)),
		plain("redis-server memory, every event in the stream", mb(m.RedisMemory)),
	)
	for _, a := range m.API {
		measure := fmt.Sprintf("%s, %s: p50 / p95 / max", a.Name, n)
		result := fmt.Sprintf("%s / %s / %s", ms(a.P50), ms(a.P95), ms(a.Max))
		if a.Target == 0 {
			rows = append(rows, plain(measure, result))
			continue
		}
		rows = append(rows, target(measure, result, "p95 <= "+ms(a.Target), a.P95 <= a.Target))
	}
	rows = append(rows, target("monitor process peak RSS (VmHWM), ingestion and requests", mb(m.PeakRSS),
		"<= "+mb(targetMonitorRSS), m.PeakRSS <= targetMonitorRSS))
	if m.DBBytes > 0 {
		per := float64(m.DBBytes+m.WALBytes) * 1e6 / float64(m.Webhooks)
		rows = append(rows, plain("SQLite file + write-ahead log, per 1,000,000 webhooks",
			fmt.Sprintf("%s (%s + %s at %d webhooks)", mb(int64(per)), mb(m.DBBytes), mb(m.WALBytes), m.Webhooks)))
	}
	return rows
}

// secs shows a duration in seconds.
func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// Targets of the monitor on a 2-core machine, SQLite, 1,000,000 webhooks
// (docs/benchmarks.md).
const (
	targetIngest     = 5000 // events/s
	targetFlat       = 0.2  // the last block's rate within this share of the first's
	targetList       = 50 * time.Millisecond
	targetPoint      = 10 * time.Millisecond
	targetSubstring  = 300 * time.Millisecond
	targetStats      = 50 * time.Millisecond
	targetMonitorRSS = 300_000_000
)
