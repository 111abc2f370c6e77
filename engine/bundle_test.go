package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/redistest"
)

// bundle is what an engine test works with: a real redis-server, a client
// on it, and a configuration for engines under test.
type bundle struct {
	redis *redistest.Server
	rdb   *redis.Client
	cfg   Config
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv := redistest.Start(t)
	return &bundle{redis: srv, rdb: srv.Client(t), cfg: testConfig(srv.Addr())}
}

// testConfig is the configuration of engines under test on the Redis at
// addr: small, quick, and allowed to reach receivers on loopback.
func testConfig(addr string) Config {
	cfg := Default()
	cfg.Redis.Address = addr
	cfg.ConsumerName = "test-engine"
	cfg.NumWorkers = 8
	cfg.MaxPerHost = 8
	cfg.AllowPrivateNetworks = true // receivers are on loopback
	cfg.RequestTimeout = 5 * time.Second
	cfg.VisibilityTimeout = 10 * time.Second
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.RetrySchedule = []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}
	return cfg
}

// start runs an engine on cfg until the returned stop function is called
// (or the test ends); stop waits for Run to return and fails the test if
// it returned an error.
func (b *bundle) start(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	_, stop = b.startEngine(t, cfg)
	return stop
}

// startEngine is start, also returning the engine.
func (b *bundle) startEngine(t *testing.T, cfg Config) (e *Engine, stop func()) {
	t.Helper()
	return b.startTuned(t, cfg, nil)
}

// startTuned is startEngine with tune, when not nil, called on the engine
// before it runs.
func (b *bundle) startTuned(t *testing.T, cfg Config, tune func(*Engine)) (e *Engine, stop func()) {
	t.Helper()
	rdb, err := NewRedisClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	e = New(cfg, rdb, testLogger(t))
	if tune != nil {
		tune(e)
	}
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("engine Run: %v", err)
			}
			rdb.Close()
		})
	}
	t.Cleanup(stop)
	return e, stop
}

// deliverOne runs one job (webhook id "w-1") through an engine whose
// configuration configure may change, against a receiver answering with
// respond, and returns the job's final status event and the receiver.
func deliverOne(t *testing.T, configure func(*Config), respond func(int, *http.Request, http.ResponseWriter)) (*bundle, sendhooks.StatusEvent, *receiver) {
	t.Helper()
	b := setup(t)
	rc := newReceiver(t, respond)
	cfg := b.cfg
	if configure != nil {
		configure(&cfg)
	}
	b.start(t, cfg)
	id := b.addJob(t, job(rc.URL, "w-1"))
	return b, b.finals(t, 1)[id], rc
}

// addJob writes a job document into the jobs stream, as a producer would.
func (b *bundle) addJob(t *testing.T, doc string) string {
	t.Helper()
	id, err := b.rdb.XAdd(context.Background(), &redis.XAddArgs{
		Stream: b.cfg.JobStream, Values: []any{sendhooks.StreamField, doc},
	}).Result()
	if err != nil {
		t.Fatalf("XADD job: %v", err)
	}
	return id
}

// addJobs writes n jobs for url with webhook ids prefix-0 .. prefix-(n-1)
// and returns their stream ids.
func (b *bundle) addJobs(t *testing.T, url, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = b.addJob(t, job(url, fmt.Sprintf("%s-%d", prefix, i)))
	}
	return ids
}

// setupGated is a bundle with a receiver that holds every request until
// the gate opens, and a configuration of 4 workers all allowed at it.
func setupGated(t *testing.T) (*bundle, *gate, *receiver, Config) {
	t.Helper()
	b := setup(t)
	g := newGate(t)
	rc := newReceiver(t, g.respond)
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 4, 4
	return b, g, rc, cfg
}

// job renders a job document in the article's shape.
func job(url, webhookID string) string {
	return fmt.Sprintf(`{"url": %q, "webhookId": %q, "messageId": "message-%s",
		"data": {"order_id": "abc123", "amount": "100.00", "currency": "USD", "id": %q},
		"secretHash": "e99a18c428cb38d5f260853678922e03",
		"metaData": {"ip_address": "192.168.1.1"}}`, url, webhookID, webhookID, webhookID)
}

// statuses reads every status event written so far, in order.
func (b *bundle) statuses(t *testing.T) []sendhooks.StatusEvent {
	t.Helper()
	msgs, err := b.rdb.XRange(context.Background(), b.cfg.StatusStream, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE status stream: %v", err)
	}
	events := make([]sendhooks.StatusEvent, 0, len(msgs))
	for _, m := range msgs {
		var ev sendhooks.StatusEvent
		raw, _ := m.Values[sendhooks.StreamField].(string)
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			t.Fatalf("status event %s does not parse: %v\n%s", m.ID, err, raw)
		}
		events = append(events, ev)
	}
	return events
}

// finals waits until n final status events exist and returns them keyed
// by streamId, failing if any job has more than one.
func (b *bundle) finals(t *testing.T, n int) map[string]sendhooks.StatusEvent {
	t.Helper()
	var events []sendhooks.StatusEvent
	waitFor(t, 30*time.Second, fmt.Sprintf("%d final status events", n), func() bool {
		events = b.statuses(t)
		return countFinal(events) >= n
	})
	finals := map[string]sendhooks.StatusEvent{}
	for _, ev := range events {
		if !ev.Status.Final() {
			continue
		}
		if prev, dup := finals[ev.StreamID]; dup {
			t.Errorf("job %s has two final events: %+v and %+v", ev.StreamID, prev, ev)
		}
		finals[ev.StreamID] = ev
	}
	if len(finals) != n {
		t.Fatalf("want %d jobs with a final status, got %d", n, len(finals))
	}
	return finals
}

func countFinal(events []sendhooks.StatusEvent) int {
	n := 0
	for _, ev := range events {
		if ev.Status.Final() {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receiver is a real HTTP server that records every request it gets and
// answers with whatever its respond function says.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	respond  func(n int, r *http.Request, w http.ResponseWriter) // n: 1-based request count
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, respond func(n int, r *http.Request, w http.ResponseWriter)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, received{header: r.Header.Clone(), body: body})
		n := len(rc.requests)
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(n, r, w)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.requests...)
}

// failFirst answers the first times requests with code and body, then 200.
func failFirst(times, code int, body string) func(int, *http.Request, http.ResponseWriter) {
	return func(n int, _ *http.Request, w http.ResponseWriter) {
		if n > times {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// answer responds with a fixed status code.
func answer(code int) func(int, *http.Request, http.ResponseWriter) {
	return func(_ int, _ *http.Request, w http.ResponseWriter) { w.WriteHeader(code) }
}

// answerAfter answers 200 after taking d over each request: a slow receiver.
func answerAfter(d time.Duration) func(int, *http.Request, http.ResponseWriter) {
	return func(_ int, _ *http.Request, w http.ResponseWriter) {
		time.Sleep(d)
		w.WriteHeader(http.StatusOK)
	}
}

// testLogger sends engine logs to the test log, shown on failure.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
