package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// panicFor makes the engine, once started, panic while it handles the job
// with webhook id "boom": when trips says so for the call of the fault
// hook (ev is nil before the job's attempt, and the status event about to
// be encoded otherwise).
func panicFor(value string, trips func(ev *sendhooks.StatusEvent) bool) func(*Engine) {
	return func(e *Engine) {
		e.faultHook = func(t task, ev *sendhooks.StatusEvent) {
			if t.job.WebhookID == "boom" && trips(ev) {
				panic(value)
			}
		}
	}
}

// panicConfig has two workers, both allowed at the one receiver: a
// worker lost, or a slot or a place in flight of the host group not given
// back, would hold up the jobs after the panic.
func panicConfig(b *bundle) Config {
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 2, 2
	return cfg
}

func TestPanicDuringAnAttemptEndsOnlyItsJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	e, stop := b.startTuned(t, panicConfig(b), panicFor("test panic", func(ev *sendhooks.StatusEvent) bool { return ev == nil }))
	ops := httptest.NewServer(e.Handler())
	t.Cleanup(ops.Close)

	good := b.addJobs(t, rc.URL, "before", 10)
	boom := b.addJob(t, job(rc.URL, "boom"))
	good = append(good, b.addJobs(t, rc.URL, "with", 10)...)
	b.finals(t, 21)
	// The engine goes on with jobs written after the panic was recorded.
	good = append(good, b.addJobs(t, rc.URL, "after", 10)...)
	finals := b.finals(t, 31)

	wantSuccess(t, finals, good, 1)
	wantOnceEach(t, rc, 30)
	if n := perWebhook(rc)["boom"]; n != 0 {
		t.Errorf("the panicking job reached the receiver %d times; the panic came before its request", n)
	}
	wantPanicEnded(t, b, finals, "internal error while delivering: test panic", map[string]panicEnd{boom: {doc: job(rc.URL, "boom"), attempt: 1}})
	ev := finals[boom]
	if ev.WebhookID != "boom" || ev.URL != rc.URL || ev.Job != job(rc.URL, "boom") || string(ev.MetaData) != `{"ip_address": "192.168.1.1"}` {
		t.Errorf("the failed event keeps what is known of the job: %+v", ev)
	}
	wantMetrics(t, ops.URL, `sendhooks_panics_total 1`, `sendhooks_jobs_total{outcome="failed"} 1`,
		`sendhooks_jobs_total{outcome="success"} 30`, `sendhooks_in_flight 0`)
	stop()
	wantNothingHeld(t, e)
}

func TestPanicEncodingTheJobsDataEndsItWithoutIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	// Every status event carrying the job's document panics: the success
	// event of its attempt, then the failed event that ends it.
	e, stop := b.startTuned(t, panicConfig(b), panicFor("cannot encode", func(ev *sendhooks.StatusEvent) bool {
		return ev != nil && ev.Job != ""
	}))
	ops := httptest.NewServer(e.Handler())
	t.Cleanup(ops.Close)

	good := b.addJobs(t, rc.URL, "before", 5)
	boom := b.addJob(t, job(rc.URL, "boom"))
	good = append(good, b.addJobs(t, rc.URL, "after", 5)...)
	finals := b.finals(t, 11)

	wantSuccess(t, finals, good, 1)
	wantOnceEach(t, rc, 11) // the panicking job's attempt was made before the panic
	wantPanicEnded(t, b, finals, "internal error while delivering: cannot encode", map[string]panicEnd{boom: {doc: job(rc.URL, "boom"), attempt: 1}})
	ev := finals[boom]
	if ev.WebhookID != "" || ev.URL != "" || ev.Job != "" || len(ev.MetaData) != 0 || ev.Created.UnixMilli() != mustStreamMillis(t, boom) {
		t.Errorf("the failed event keeps only what the engine made: %+v", ev)
	}
	wantMetrics(t, ops.URL, `sendhooks_panics_total 2`, `sendhooks_in_flight 0`)
	stop()
	wantNothingHeld(t, e)
}

// TestPanicWhileOutcomesCannotBeWrittenEndsOnceTheyCan makes every
// outcome's write fail (the status stream's key holds a string) while one
// job panics at each of its attempts. Its failed outcome cannot be
// written either: it stays pending, is claimed again and panics again,
// with the engine running through it; once writes succeed it ends with
// one failed status and one dead letter, and no loop is left.
func TestPanicWhileOutcomesCannotBeWrittenEndsOnceTheyCan(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if err := b.rdb.Set(ctx, b.cfg.StatusStream, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, answer(http.StatusOK))
	cfg := panicConfig(b)
	cfg.VisibilityTimeout = time.Second
	cfg.RequestTimeout = 500 * time.Millisecond
	var panics atomic.Int32
	e, stop := b.startTuned(t, cfg, func(e *Engine) {
		e.faultHook = func(t task, ev *sendhooks.StatusEvent) {
			if t.job.WebhookID == "boom" && ev == nil {
				panics.Add(1)
				panic("test panic")
			}
		}
	})
	ops := httptest.NewServer(e.Handler())
	t.Cleanup(ops.Close)

	good := b.addJobs(t, rc.URL, "unrecorded", 3)
	boom := b.addJob(t, job(rc.URL, "boom"))
	waitFor(t, 10*time.Second, "the panicking job handled again after its outcome could not be written", func() bool {
		return panics.Load() >= 2
	})
	if p := b.pendingCount(t); p != 4 {
		t.Fatalf("%d of 4 jobs pending while no outcome can be written", p)
	}

	if err := b.rdb.Del(ctx, b.cfg.StatusStream).Err(); err != nil {
		t.Fatal(err)
	}
	finals := b.finals(t, 4)
	wantSuccess(t, finals, good, 1)
	wantPanicEnded(t, b, finals, "internal error while delivering: test panic", map[string]panicEnd{boom: {doc: job(rc.URL, "boom"), attempt: 1}})
	n := panics.Load()
	wantMetrics(t, ops.URL, fmt.Sprintf("sendhooks_panics_total %d", n), `sendhooks_in_flight 0`)
	stop()
	if got := panics.Load(); got != n {
		t.Errorf("the job panicked again after its outcome was written: %d panics, then %d", n, got)
	}
	wantNothingHeld(t, e)
}

func init() {
	// Reading the stream entry of a job whose webhookId starts with
	// "boom-read" panics (the TestPanicWhileReading tests); no other test
	// uses such an id. Set here, before any test starts an engine.
	readFault = func(msg redis.XMessage) {
		if raw, _ := msg.Values[sendhooks.StreamField].(string); strings.Contains(raw, `"webhookId": "boom-read`) {
			panic("test read panic")
		}
	}
}

// readPanicReason is the reason of a job whose reading panicked.
const readPanicReason = "bad job: internal error while reading the job: test read panic"

// TestPanicWhileReadingAJobEndsItOnly makes reading two jobs' entries
// panic among others, one of them a retry (attempt 2 of a job first
// written under another id): each ends once, failed with the panic as its
// reason, under its first id and numbered with its attempt (so that its
// webhook in the monitor ends failed), and in the dead-letter stream with
// its document; every other job is delivered once, and the engine goes on.
func TestPanicWhileReadingAJobEndsItOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	e, stop := b.startTuned(t, panicConfig(b), nil)
	ops := httptest.NewServer(e.Handler())
	t.Cleanup(ops.Close)

	good := b.addJobs(t, rc.URL, "before", 5)
	boom := b.addJob(t, job(rc.URL, "boom-read"))
	const origin = "1700000000000-0"
	retryDoc := job(rc.URL, "boom-read-retry")
	err := b.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: b.cfg.JobStream, Values: map[string]any{
		sendhooks.StreamField: retryDoc, sendhooks.FieldOrigin: origin, sendhooks.FieldAttempt: "2", sendhooks.FieldRunStart: "1",
	}}).Err()
	if err != nil {
		t.Fatal(err)
	}
	good = append(good, b.addJobs(t, rc.URL, "after", 5)...)
	finals := b.finals(t, 12)

	wantSuccess(t, finals, good, 1)
	wantOnceEach(t, rc, 10)
	wantPanicEnded(t, b, finals, readPanicReason, map[string]panicEnd{
		boom:   {doc: job(rc.URL, "boom-read"), attempt: 1},
		origin: {doc: retryDoc, attempt: 2},
	})
	wantMetrics(t, ops.URL, `sendhooks_panics_total 2`, `sendhooks_jobs_total{outcome="bad_job"} 2`,
		`sendhooks_jobs_total{outcome="success"} 10`)
	stop()
	wantNothingHeld(t, e)
}

// TestPanicWhileReadingAndRecordingAJobEndsItWithoutItsData makes a job's
// reading panic, and then the encoding of its status event: it ends with
// an event that carries only what the engine made, still once, and the
// engine goes on (the read loop has no recover of its own).
func TestPanicWhileReadingAndRecordingAJobEndsItWithoutItsData(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	e, stop := b.startTuned(t, panicConfig(b), func(e *Engine) {
		e.faultHook = func(t task, ev *sendhooks.StatusEvent) {
			if ev != nil && strings.Contains(ev.Job, `"boom-read`) {
				panic("cannot encode")
			}
		}
	})
	ops := httptest.NewServer(e.Handler())
	t.Cleanup(ops.Close)

	good := b.addJobs(t, rc.URL, "before", 3)
	boom := b.addJob(t, job(rc.URL, "boom-read-encode"))
	good = append(good, b.addJobs(t, rc.URL, "after", 3)...)
	finals := b.finals(t, 7)

	wantSuccess(t, finals, good, 1)
	wantOnceEach(t, rc, 6)
	wantPanicEnded(t, b, finals, readPanicReason, map[string]panicEnd{boom: {doc: job(rc.URL, "boom-read-encode"), attempt: 1}})
	if ev := finals[boom]; ev.Job != "" || ev.WebhookID != "" || ev.URL != "" {
		t.Errorf("the event of a job whose recording panicked keeps only what the engine made: %+v", ev)
	}
	wantMetrics(t, ops.URL, `sendhooks_panics_total 2`, `sendhooks_jobs_total{outcome="success"} 6`)
	stop()
	wantNothingHeld(t, e)
}

// panicEnd is what a job whose reading or handling panicked must end
// with: its document in the dead-letter stream, its event numbered with
// attempt.
type panicEnd struct {
	doc     string
	attempt int
}

// wantPanicEnded checks, once nothing is left pending, that each job of
// want (by its first stream id) ended with one status event, failed with
// reason at its attempt, and one dead letter keeping its document, and
// that these are the only dead letters.
func wantPanicEnded(t *testing.T, b *bundle, finals map[string]sendhooks.StatusEvent, reason string, want map[string]panicEnd) {
	t.Helper()
	b.waitAcked(t)
	events := map[string]int{}
	for _, ev := range b.statuses(t) {
		events[ev.StreamID]++
	}
	for id, w := range want {
		ev := finals[id]
		if events[id] != 1 || ev.Status != sendhooks.StatusFailed || ev.DeliveryError != reason ||
			ev.Attempt != w.attempt || ev.NumberOfTries != w.attempt {
			t.Errorf("panicking job %s: %d status events, final %+v; want one, failed at attempt %d with %q",
				id, events[id], ev, w.attempt, reason)
		}
	}
	dead, err := b.rdb.XRange(context.Background(), sendhooks.DeadLetterStream(b.cfg.JobStream), "-", "+").Result()
	if err != nil || len(dead) != len(want) {
		t.Fatalf("dead-letter stream: %v %v; want the %d panicking jobs alone", dead, err, len(want))
	}
	for _, d := range dead {
		w, ok := want[fmt.Sprint(d.Values["origin"])]
		if !ok || d.Values["data"] != w.doc || d.Values["error"] != reason || d.Values["attempts"] != fmt.Sprint(w.attempt) {
			t.Errorf("dead letter %v", d.Values)
		}
	}
}

// wantOnceEach fails unless the receiver got n webhooks, each once.
func wantOnceEach(t *testing.T, rc *receiver, n int) {
	t.Helper()
	counts := perWebhook(rc)
	for id, c := range counts {
		if c != 1 {
			t.Errorf("webhook %s reached the receiver %d times, want once", id, c)
		}
	}
	if len(counts) != n {
		t.Errorf("the receiver got %d webhooks, want %d", len(counts), n)
	}
}

// wantMetrics fails unless the engine's /metrics at ops has each line.
func wantMetrics(t *testing.T, ops string, lines ...string) {
	t.Helper()
	body := get(t, ops+"/metrics", http.StatusOK)
	for _, want := range lines {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// wantNothingHeld checks, once the engine has stopped with every job
// ended, that its bookkeeping came back to rest: no slot taken, no entry
// held, no request in flight for any host group.
func wantNothingHeld(t *testing.T, e *Engine) {
	t.Helper()
	if n := len(e.slots); n != 0 {
		t.Errorf("%d slots still taken", n)
	}
	e.held.mu.Lock()
	if n := len(e.held.ids); n != 0 {
		t.Errorf("%d entries still held: %v", n, e.held.ids)
	}
	e.held.mu.Unlock()
	e.sched.mu.Lock()
	defer e.sched.mu.Unlock()
	for name, g := range e.sched.groups {
		if g.running != 0 || len(g.queue) != 0 {
			t.Errorf("host group %s: %d in flight, %d queued", name, g.running, len(g.queue))
		}
	}
}
