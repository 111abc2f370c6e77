// Package bench measures the engine and the monitor for cmd/sendhooks-bench.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/ferret"
	"github.com/sendhooks/sendhooks/internal/redisserver"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/web"
)

// MonitorOptions says what Monitor measures.
type MonitorOptions struct {
	Webhooks int // how many webhooks (one final status event each) the API is timed over
	// Ingest is how many of them reach the monitor through the status
	// stream, its ingestion timed; the others are then written straight
	// into the hooks collection, as the monitor stores them, so that the
	// API can be timed at sizes the embedded FerretDB takes hours to
	// ingest. 0 means all of them.
	Ingest   int
	Requests int       // how many times each API request is timed, after one warm-up
	Progress io.Writer // one line per phase, and progress during long phases; nil discards
	// MongoURI is a MongoDB server to measure on, such as
	// mongodb://127.0.0.1:27017: Monitor works in a database of its own
	// there, which it drops when done. "" starts the embedded FerretDB.
	MongoURI string
}

// MonitorResult is what Monitor measured.
type MonitorResult struct {
	Webhooks int // how many webhooks the API was timed over
	Ingested int // how many of them went through the monitor's ingestion
	// IngestDuration runs from the start of the monitor until every event
	// is stored in MongoDB. It is found by polling every 10 ms, which
	// bounds its resolution.
	IngestDuration  time.Duration
	EventsPerSecond float64 // status events ingested into MongoDB per second
	// API has one row per request kind, in this order: list (first page),
	// filter status=failed, search, hook by id, stats.
	API []APITiming
}

// APITiming is the response times of one API request over Requests runs.
type APITiming struct {
	Name          string // e.g. "list (first page)"
	Path          string // the request path with query
	P50, P95, Max time.Duration
}

// monitorPollInterval is how often Monitor looks whether ingestion is done.
const monitorPollInterval = 10 * time.Millisecond

// monitorChunk is how many status events one pipelined XADD round writes.
const monitorChunk = 1000

// Monitor starts a throwaway redis-server and an embedded FerretDB, preloads
// the status stream with o.Webhooks final status events (nine in ten
// success, one in ten failed), starts the monitor as the dev stack does,
// times its ingestion of them all, then times the API's requests over HTTP
// on loopback. It checks that the API answers 200 and counts what was
// written, and stops everything before it returns.
func Monitor(ctx context.Context, o MonitorOptions) (res MonitorResult, err error) {
	if o.Webhooks < 1 || o.Requests < 1 {
		return res, fmt.Errorf("webhooks and requests must be at least 1, got %d and %d", o.Webhooks, o.Requests)
	}
	if o.Ingest == 0 {
		o.Ingest = o.Webhooks
	}
	if o.Ingest < 1 || o.Ingest > o.Webhooks {
		return res, fmt.Errorf("-ingest %d: want 1 to the number of webhooks (%d)", o.Ingest, o.Webhooks)
	}
	out := &lockedWriter{w: o.Progress}
	if o.Progress == nil {
		out.w = io.Discard
	}
	res.Webhooks, res.Ingested = o.Webhooks, o.Ingest

	fmt.Fprintln(out, "monitor: starting redis-server")
	rs, err := redisserver.Start(ctx)
	if err != nil {
		return res, fmt.Errorf("start redis-server: %w", err)
	}
	defer rs.Stop()
	mongoURI, dropMongo, err := benchMongo(ctx, o.MongoURI, out)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, dropMongo()) }()

	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, svc, api, err := newBenchMonitor(rs.Addr(), mongoURI, log)
	if err != nil {
		return res, err
	}
	set := newMonitorSet(o.Webhooks, time.Now())
	if err := set.preload(ctx, rs.Addr(), cfg.StreamKey, o.Ingest, out); err != nil {
		return res, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, fmt.Errorf("listen for the API: %w", err)
	}
	fmt.Fprintf(out, "monitor: ingesting %d status events\n", o.Ingest)
	srvCtx, stop := context.WithCancel(ctx)
	served := make(chan struct{})
	var serveErr error
	start := time.Now()
	go func() {
		defer close(served)
		serveErr = svc.Serve(srvCtx, monitor.Listener{Name: "api", Listener: ln, Handler: api})
	}()
	defer func() {
		stop()
		<-served
		if serveErr != nil {
			err = errors.Join(err, fmt.Errorf("monitor: %w", serveErr))
		}
	}()
	if err := waitIngested(ctx, svc, o.Ingest, served, out); err != nil {
		return res, err
	}
	res.IngestDuration = time.Since(start)
	res.EventsPerSecond = float64(o.Ingest) / res.IngestDuration.Seconds()
	fmt.Fprintf(out, "monitor: ingested %d status events in %v: %.0f events/s\n",
		o.Ingest, res.IngestDuration.Round(time.Millisecond), res.EventsPerSecond)
	if err := set.seed(ctx, mongoURI, cfg.MongoDatabase, o.Ingest, out); err != nil {
		return res, err
	}

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	base := "http://" + ln.Addr().String()
	for _, r := range set.requests() {
		t, err := timeRequest(ctx, client, base, r, o.Requests)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(out, "monitor: %-20s p50 %v  p95 %v  max %v\n", t.Name,
			t.P50.Round(time.Microsecond), t.P95.Round(time.Microsecond), t.Max.Round(time.Microsecond))
		res.API = append(res.API, t)
	}
	return res, nil
}

// benchMongo returns the connection string of the database Monitor works
// in, and the function that removes it: a database of its own on the
// server at uri, or, when uri is "", the embedded FerretDB in a temporary
// directory.
func benchMongo(ctx context.Context, uri string, out io.Writer) (string, func() error, error) {
	if uri == "" {
		fmt.Fprintln(out, "monitor: starting the embedded MongoDB-wire server (FerretDB)")
		dir, err := os.MkdirTemp("", "sendhooks-bench-mongo-")
		if err != nil {
			return "", nil, fmt.Errorf("data directory for FerretDB: %w", err)
		}
		fdb, err := ferret.Start(ctx, "127.0.0.1:0", dir)
		if err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
		return "mongodb://" + fdb.Addr() + "/sendhooks", func() error {
			fdb.Stop()
			return os.RemoveAll(dir)
		}, nil
	}
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
		return "", nil, fmt.Errorf("-mongodb-uri %q: want a mongodb:// or mongodb+srv:// connection string", uri)
	}
	db := "sendhooks_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	u.Path = "/" + db
	fmt.Fprintf(out, "monitor: measuring on %s, database %s (dropped when done)\n", u.Redacted(), db)
	client, err := mongo.Connect(options.Client().ApplyURI(u.String()).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return "", nil, fmt.Errorf("-mongodb-uri: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(ctx)
		return "", nil, fmt.Errorf("-mongodb-uri %s: %w", u.Redacted(), err)
	}
	return u.String(), func() error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err := client.Database(db).Drop(ctx)
		return errors.Join(err, client.Disconnect(ctx))
	}, nil
}

// newBenchMonitor builds the monitor and its API handler on the Redis at
// redisAddr and the MongoDB database at mongoURI, as the dev stack does.
func newBenchMonitor(redisAddr, mongoURI string, log *slog.Logger) (monitor.Config, *monitor.Service, http.Handler, error) {
	host, port, err := net.SplitHostPort(redisAddr)
	if err != nil {
		return monitor.Config{}, nil, nil, fmt.Errorf("redis address %q: %w", redisAddr, err)
	}
	env := map[string]string{
		"REDIS_HOST":    host,
		"REDIS_PORT":    port,
		"MONGODB_URI":   mongoURI,
		"CONSUMER_NAME": "sendhooks-bench",
	}
	cfg, err := monitor.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("monitor configuration: %w", err)
	}
	svc, err := monitor.New(cfg, log)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("monitor: %w", err)
	}
	api, _ := web.ForService(svc, web.APIConfig{Logger: log}, web.DashboardConfig{Logger: log})
	return cfg, svc, api, nil
}

// monitorSet is the webhooks Monitor writes: hook i is created i steps
// into the hour before now, and every tenth one (i%10 == 9) failed.
type monitorSet struct {
	n      int
	now    time.Time
	failed int // how many failed
}

func newMonitorSet(n int, now time.Time) *monitorSet {
	return &monitorSet{n: n, now: now, failed: n / 10}
}

func (s *monitorSet) webhookID(i int) string { return fmt.Sprintf("bench-%07d", i) }

// event is the final status event of hook i, as the engine writes it.
func (s *monitorSet) event(i int) sendhooks.StatusEvent {
	created := s.now.Add(-time.Hour + time.Duration(i)*(time.Hour/time.Duration(s.n)))
	id := s.webhookID(i)
	u := "http://127.0.0.1:8080/hooks/endpoint-" + strconv.Itoa(i%16)
	data := json.RawMessage(`{"order":` + strconv.Itoa(i) + `,"amount":"19.99","currency":"EUR","customer":"c-` + strconv.Itoa(i%977) + `"}`)
	meta := json.RawMessage(`{"tenant":"t-` + strconv.Itoa(i%7) + `"}`)
	job, _ := json.Marshal(sendhooks.Job{URL: u, WebhookID: id, MessageID: "msg-" + id, Data: data,
		SecretHash: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", MetaData: meta}) // cannot fail
	ev := sendhooks.StatusEvent{
		WebhookID: id, Status: sendhooks.StatusSuccess, URL: u,
		Created: sendhooks.Time{Time: created}, PayloadSize: len(data), NumberOfTries: 1,
		MessageID: "msg-" + id, StreamID: strconv.FormatInt(created.UnixMilli(), 10) + "-" + strconv.Itoa(i),
		Attempt: 1, StatusCode: 200, DurationMs: 3 + float64(i%200)/8,
		AttemptedAt: sendhooks.Time{Time: created.Add(2 * time.Millisecond)},
		Response:    "ok", MetaData: meta, Job: string(job),
	}
	if i%10 == 9 {
		ev.Status, ev.NumberOfTries, ev.Attempt, ev.StatusCode = sendhooks.StatusFailed, 5, 5, 500
		ev.DeliveryError = "webhook sending failed with status: 500"
		ev.Response = `{"error":"internal"}`
	} else {
		ev.Delivered = sendhooks.Time{Time: ev.AttemptedAt.Add(time.Duration(ev.DurationMs * float64(time.Millisecond)))}
	}
	return ev
}

// preload writes the status events of the first n hooks into stream,
// pipelined in chunks.
func (s *monitorSet) preload(ctx context.Context, redisAddr, stream string, n int, out io.Writer) error {
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	fmt.Fprintf(out, "monitor: preloading %d status events into %s\n", n, stream)
	start := time.Now()
	for first := 0; first < n; first += monitorChunk {
		pipe := rdb.Pipeline()
		for i := first; i < min(first+monitorChunk, n); i++ {
			ev := s.event(i)
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{sendhooks.StreamField, ev.AppendJSON(nil)}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("XADD status events into %s: %w", stream, err)
		}
		if done := min(first+monitorChunk, n); done%10_000 == 0 || done == n {
			fmt.Fprintf(out, "monitor: preloaded %d of %d\n", done, n)
		}
	}
	fmt.Fprintf(out, "monitor: preloaded %d status events in %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// seed writes the hooks from the first-th on straight into the hooks
// collection of db, each as the monitor stores a hook built from its one
// status event, a thousand per InsertMany.
func (s *monitorSet) seed(ctx context.Context, uri, db string, first int, out io.Writer) error {
	if first >= s.n {
		return nil
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return fmt.Errorf("seed hooks: %w", err)
	}
	defer client.Disconnect(context.WithoutCancel(ctx))
	hooks := client.Database(db).Collection(monitor.HooksCollection)
	fmt.Fprintf(out, "monitor: writing hooks %d to %d straight into %s\n", first+1, s.n, monitor.HooksCollection)
	start, now := time.Now(), time.Now().UTC().Truncate(time.Millisecond)
	for from := first; from < s.n; from += monitorChunk {
		docs := make([]any, 0, monitorChunk)
		for i := from; i < min(from+monitorChunk, s.n); i++ {
			h := &monitor.Hook{}
			h.Apply(monitor.Event{StatusEvent: s.event(i)})
			h.EventCount, h.Version, h.UpdatedAt = 1, 1, now
			docs = append(docs, h)
		}
		if _, err := hooks.InsertMany(ctx, docs); err != nil {
			return fmt.Errorf("seed hooks %d to %d: %w", from+1, from+len(docs), err)
		}
		if done := from + len(docs); done%10_000 == 0 || done == s.n {
			fmt.Fprintf(out, "monitor: %d of %d hooks stored\n", done, s.n)
		}
	}
	fmt.Fprintf(out, "monitor: wrote %d hooks in %v\n", s.n-first, time.Since(start).Round(time.Millisecond))
	return nil
}

// monitorRequest is one API request Monitor times, and the check of its answer.
type monitorRequest struct {
	name, path string
	check      func(body []byte) error
}

// requests are the API requests timed, in the order of MonitorResult.API.
func (s *monitorSet) requests() []monitorRequest {
	hooks := web.APIPrefix + "/hooks"
	search := s.webhookID(s.n / 2)
	return []monitorRequest{
		{"list (first page)", hooks, wantNumber("meta.totalItems", s.n)},
		{"filter status=failed", hooks + "?status=failed", wantNumber("meta.totalItems", s.failed)},
		{"search", hooks + "?search=" + url.QueryEscape(search), wantNumber("meta.totalItems", 1)},
		{"hook by id", hooks + "/" + url.PathEscape(s.event(s.n/2).StreamID), wantString("externalId", search)},
		{"stats", web.APIPrefix + "/stats", wantNumber("total", min(s.n, monitor.MaxStatsHooks))},
	}
}

// wantNumber checks that the answer's field at path (dotted) is want.
func wantNumber(path string, want int) func([]byte) error {
	return wantField(path, strconv.Itoa(want))
}

// wantString checks that the answer's field at path (dotted) is want.
func wantString(path, want string) func([]byte) error {
	return wantField(path, strconv.Quote(want))
}

// wantField checks that the answer's field at path (dotted) holds the JSON text want.
func wantField(path, want string) func([]byte) error {
	return func(body []byte) error {
		v := json.RawMessage(body)
		for _, key := range strings.Split(path, ".") {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(v, &obj); err != nil {
				return fmt.Errorf("answer is not a JSON object at %s: %w", path, err)
			}
			v = obj[key]
		}
		if string(v) != want {
			return fmt.Errorf("%s is %s, want %s", path, v, want)
		}
		return nil
	}
}

// waitIngested polls the monitor's ingestion counter until n events are
// stored; it fails when an event did not parse or the monitor stopped.
func waitIngested(ctx context.Context, svc *monitor.Service, n int, served <-chan struct{}, out io.Writer) error {
	tick := time.NewTicker(monitorPollInterval)
	defer tick.Stop()
	lastReport, reported := time.Now(), 0
	for {
		counts, err := monitorCounters(svc)
		if err != nil {
			return err
		}
		ingested, bad := int(counts["sendhooks_monitor_events_ingested_total"]), int(counts["sendhooks_monitor_event_parse_failures_total"])
		switch {
		case bad > 0:
			return fmt.Errorf("the monitor could not parse %d of the status events", bad)
		case ingested >= n:
			return nil
		case ingested > reported && time.Since(lastReport) >= time.Second:
			fmt.Fprintf(out, "monitor: ingested %d of %d\n", ingested, n)
			lastReport, reported = time.Now(), ingested
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for ingestion (%d of %d): %w", ingested, n, ctx.Err())
		case <-served:
			return fmt.Errorf("the monitor stopped after ingesting %d of %d events", ingested, n)
		case <-tick.C:
		}
	}
}

// monitorCounters reads the monitor's counters by name.
func monitorCounters(svc *monitor.Service) (map[string]float64, error) {
	families, err := svc.Gatherer().Gather()
	if err != nil {
		return nil, fmt.Errorf("read the monitor's metrics: %w", err)
	}
	counts := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			counts[f.GetName()] += m.GetCounter().GetValue()
		}
	}
	return counts, nil
}

// timeRequest times GET base+r.path runs times after one warm-up, checking
// every answer.
func timeRequest(ctx context.Context, client *http.Client, base string, r monitorRequest, runs int) (APITiming, error) {
	t := APITiming{Name: r.name, Path: r.path}
	took := make([]time.Duration, 0, runs)
	for i := range runs + 1 {
		start := time.Now()
		body, err := apiGet(ctx, client, base+r.path)
		d := time.Since(start)
		if err == nil {
			err = r.check(body)
		}
		if err != nil {
			return t, fmt.Errorf("API %s (GET %s): %w", r.name, r.path, err)
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
