package engine

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// gate is a receiver behaviour that holds every request until opened,
// counting how many it holds at once.
type gate struct {
	open    chan struct{}
	once    sync.Once
	held    atomic.Int32
	maxHeld atomic.Int32
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) respond(_ int, r *http.Request, w http.ResponseWriter) {
	n := g.held.Add(1)
	defer g.held.Add(-1)
	for {
		m := g.maxHeld.Load()
		if n <= m || g.maxHeld.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case <-g.open:
		w.WriteHeader(http.StatusOK)
	case <-r.Context().Done():
	}
}

func TestRetriesSurviveAnEngineRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, failFirst(1, http.StatusBadGateway, ""))
	cfg := b.cfg
	cfg.RetrySchedule = []time.Duration{time.Second}
	stop := b.start(t, cfg)
	id := b.addJob(t, job(rc.URL, "restart"))
	waitFor(t, 10*time.Second, "the retry event", func() bool { return len(b.statuses(t)) == 1 })
	stop()

	if n, err := b.rdb.ZCard(context.Background(), sendhooks.RetrySet(cfg.JobStream)).Result(); err != nil || n != 1 {
		t.Fatalf("retry set holds %d entries (%v), want the scheduled retry", n, err)
	}
	cfg.ConsumerName = "another-engine" // any engine of the group may run it
	b.start(t, cfg)
	final := b.finals(t, 1)[id]
	if final.Status != sendhooks.StatusSuccess || final.NumberOfTries != 2 || final.Attempt != 2 {
		t.Fatalf("final event: %+v", final)
	}
	if n := len(rc.got()); n != 2 {
		t.Errorf("receiver got %d requests, want 2", n)
	}
}

func TestStopFinishesInFlightAndLeavesTheRestPending(t *testing.T) {
	t.Parallel()
	b, g, rc, cfg := setupGated(t)
	const n = 10
	b.addJobs(t, rc.URL, "w", n)
	stop := b.start(t, cfg)
	waitFor(t, 10*time.Second, "4 requests in flight", func() bool { return g.held.Load() == 4 })

	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("engine stopped without waiting for its in-flight deliveries")
	case <-time.After(100 * time.Millisecond): // a negative check: give a wrong stop its chance
	}
	g.release()
	<-stopped
	if got := countFinal(b.statuses(t)); got != 4 {
		t.Fatalf("after the stop, %d jobs have a final status, want exactly the 4 in flight", got)
	}

	b.start(t, cfg)
	b.finals(t, n)
	reqs := rc.got()
	seen := map[string]int{}
	for _, r := range reqs {
		seen[r.header.Get("webhook-id")]++
	}
	if len(reqs) != n || len(seen) != n {
		t.Errorf("receiver got %d requests for %d webhooks, want each of %d exactly once", len(reqs), len(seen), n)
	}
}

func TestShutdownDeadlineLeavesUnfinishedJobsPending(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var hang atomic.Bool
	hang.Store(true)
	rc := newReceiver(t, func(_ int, r *http.Request, w http.ResponseWriter) {
		if hang.Load() {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	cfg := b.cfg
	cfg.ShutdownTimeout = 100 * time.Millisecond
	stop := b.start(t, cfg)
	id := b.addJob(t, job(rc.URL, "cut-short"))
	waitFor(t, 10*time.Second, "the request in flight", func() bool { return len(rc.got()) == 1 })
	stop()
	if evs := b.statuses(t); len(evs) != 0 {
		t.Fatalf("a delivery cut short by the deadline must record nothing, got %+v", evs)
	}
	p, err := b.rdb.XPending(context.Background(), cfg.JobStream, cfg.ConsumerGroup).Result()
	if err != nil || p.Count != 1 {
		t.Fatalf("want the job left pending, got %+v, %v", p, err)
	}

	hang.Store(false)
	b.start(t, cfg) // same consumer name: it reads its own pending jobs first
	if final := b.finals(t, 1)[id]; final.Status != sendhooks.StatusSuccess {
		t.Fatalf("final event: %+v", final)
	}
}

func TestClaimsJobsLeftPendingByADeadConsumer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	ctx := context.Background()
	if err := ensureGroup(ctx, b.rdb, newKeys(b.cfg)); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, b.addJob(t, job(rc.URL, fmt.Sprintf("orphan-%d", i))))
	}
	// A consumer reads the jobs and dies before acknowledging them.
	if _, err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: b.cfg.ConsumerGroup, Consumer: "dead-engine", Streams: []string{b.cfg.JobStream, ">"}, Count: 10,
	}).Result(); err != nil {
		t.Fatal(err)
	}
	cfg := b.cfg
	cfg.RequestTimeout = 200 * time.Millisecond
	cfg.VisibilityTimeout = 500 * time.Millisecond
	b.start(t, cfg)
	finals := b.finals(t, 5)
	for _, id := range ids {
		if finals[id].Status != sendhooks.StatusSuccess {
			t.Errorf("orphaned job %s: %+v", id, finals[id])
		}
	}
	b.waitAcked(t)
}

func TestSlowReceiverDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGate(t)
	slow := newReceiverAt(t, "127.0.0.2", g.respond) // another host than the fast one
	fast := newReceiver(t, answer(http.StatusOK))
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 4, 2
	b.start(t, cfg)
	var fastIDs []string
	for i := range 30 {
		if i%3 == 0 {
			b.addJob(t, job(slow.URL, fmt.Sprintf("slow-%d", i)))
			continue
		}
		fastIDs = append(fastIDs, b.addJob(t, job(fast.URL, fmt.Sprintf("fast-%d", i))))
	}
	// While the slow receiver holds its requests, every fast job gets through.
	waitFor(t, 20*time.Second, "all fast jobs delivered", func() bool { return len(fast.got()) == len(fastIDs) })
	if held := g.maxHeld.Load(); held > 2 {
		t.Errorf("slow receiver had %d requests at once, want at most maxPerHost=2", held)
	}
	g.release()
	finals := b.finals(t, 30)
	for _, ev := range finals {
		if ev.Status != sendhooks.StatusSuccess || ev.NumberOfTries != 1 {
			t.Errorf("job %s (%s): %+v", ev.StreamID, ev.WebhookID, ev)
		}
	}
	if n := len(slow.got()); n != 10 {
		t.Errorf("slow receiver got %d requests, want 10", n)
	}
}

func TestKeepsWorkingThroughARedisRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	b.start(t, b.cfg)
	first := b.addJob(t, job(rc.URL, "before"))
	b.finals(t, 1)

	b.redis.Kill(t)
	b.redis.Restart(t)
	second := b.addJob(t, job(rc.URL, "after"))
	finals := b.finals(t, 2)
	if finals[first].Status != sendhooks.StatusSuccess || finals[second].Status != sendhooks.StatusSuccess {
		t.Fatalf("finals: %+v", finals)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, failFirst(1, http.StatusInternalServerError, ""))
	e, _ := b.startEngine(t, b.cfg)
	ops := httptest.NewServer(e.Handler())
	t.Cleanup(ops.Close)
	b.addJob(t, job(rc.URL, "m1"))
	b.addJob(t, `not json`)
	b.finals(t, 2)

	body := get(t, ops.URL+"/metrics", http.StatusOK)
	for _, want := range []string{
		`sendhooks_jobs_total{outcome="success"} 1`,
		`sendhooks_jobs_total{outcome="bad_job"} 1`,
		`sendhooks_attempts_total{result="failure"} 1`,
		`sendhooks_attempts_total{result="success"} 1`,
		`sendhooks_retries_scheduled_total 1`,
		`sendhooks_attempt_duration_seconds_count 2`,
		`sendhooks_in_flight 0`,
		`sendhooks_retry_set_size 0`,
		`sendhooks_consumer_lag 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if got := get(t, ops.URL+"/healthz", http.StatusOK); got != "ok\n" {
		t.Errorf("/healthz = %q", got)
	}
	if got := get(t, ops.URL+"/readyz", http.StatusOK); got != "ready\n" {
		t.Errorf("/readyz = %q", got)
	}
	b.redis.Kill(t)
	if got := get(t, ops.URL+"/readyz", http.StatusServiceUnavailable); !strings.HasPrefix(got, "not ready: redis:") {
		t.Errorf("/readyz with Redis down = %q", got)
	}
	b.redis.Restart(t)
}

func get(t *testing.T, url string, wantCode int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: status %d, want %d; body %s", url, resp.StatusCode, wantCode, body)
	}
	return string(body)
}

func TestTwoEnginesShareOneStream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	for _, name := range []string{"engine-a", "engine-b"} {
		cfg := b.cfg
		cfg.ConsumerName = name
		b.start(t, cfg)
	}
	const n = 40
	b.addJobs(t, rc.URL, "shared", n)
	b.finals(t, n)         // fails on a second final status for any job
	wantOnceEach(t, rc, n) // by two healthy engines
	b.waitAcked(t)
}
