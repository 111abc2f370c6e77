package engine

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// newReceiverAt is newReceiver listening on ip, a loopback address other
// than 127.0.0.1: receivers on different addresses are different host
// groups, where receivers on ports of one address are one.
func newReceiverAt(t *testing.T, ip string, respond func(int, *http.Request, http.ResponseWriter)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	rc.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, received{header: r.Header.Clone(), body: body})
		n := len(rc.requests)
		rc.mu.Unlock()
		rc.respond(n, r, w)
	})}}
	rc.Start()
	t.Cleanup(rc.Close)
	return rc
}

// entriesAdded is how many entries were ever added to the jobs stream.
func (b *bundle) entriesAdded(t *testing.T) int64 {
	t.Helper()
	info, err := b.rdb.XInfoStream(context.Background(), b.cfg.JobStream).Result()
	if err != nil {
		t.Fatalf("XINFO STREAM: %v", err)
	}
	return info.EntriesAdded
}

// wantNothingPutBack checks that the jobs stream got only the n jobs
// written and that the retry set is empty: no job went back through Redis
// because its host was busy.
func (b *bundle) wantNothingPutBack(t *testing.T, n int) {
	t.Helper()
	if got := b.entriesAdded(t); got != int64(n) {
		t.Errorf("the jobs stream got %d entries, want the %d jobs written and no more", got, n)
	}
	if got, err := b.rdb.ZCard(context.Background(), sendhooks.RetrySet(b.cfg.JobStream)).Result(); err != nil || got != 0 {
		t.Errorf("retry set holds %d jobs (%v), want none", got, err)
	}
}

// wantAllOnce checks that every job ended delivered at its first attempt,
// and that the receivers got each webhook once.
func wantAllOnce(t *testing.T, finals map[string]sendhooks.StatusEvent, receivers ...*receiver) {
	t.Helper()
	for id, ev := range finals {
		if ev.Status != sendhooks.StatusSuccess || ev.NumberOfTries != 1 {
			t.Errorf("job %s (%s): %+v", id, ev.WebhookID, ev)
		}
	}
	total := 0
	for _, rc := range receivers {
		for wid, n := range perWebhook(rc) {
			total++
			if n != 1 {
				t.Errorf("%s delivered %d times, want once", wid, n)
			}
		}
	}
	if total != len(finals) {
		t.Errorf("receivers saw %d webhooks, want %d", total, len(finals))
	}
}

// addMixed writes jobs for each url in turn, n for each, and returns their
// stream ids.
func (b *bundle) addMixed(t *testing.T, n int, urls ...string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		for k, u := range urls {
			ids = append(ids, b.addJob(t, job(u, fmt.Sprintf("host%d-%d", k, i))))
		}
	}
	return ids
}

// With one receiver host, it gets every worker: with no hard cap, as many
// requests at once as there are workers. As many jobs again wait in
// memory, pending and unacknowledged; the rest stay unread in the stream,
// and nothing goes back through Redis.
func TestOneHostUsesEveryWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGate(t)
	rc := newReceiver(t, g.respond)
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 8, 0
	cfg.RequestTimeout, cfg.VisibilityTimeout = 30*time.Second, time.Minute // the gates hold requests
	const n = 30
	b.addJobs(t, rc.URL, "one", n)
	e, _ := b.startEngine(t, cfg)

	waitFor(t, 20*time.Second, "8 requests at the receiver and 8 jobs waiting", func() bool {
		q, p, _ := e.sched.counts()
		return g.held.Load() == 8 && q == 8 && p == 0
	})
	if got := b.pendingCount(t); got != 16 {
		t.Errorf("%d jobs pending in the group, want 16 (waiting jobs are not acknowledged)", got)
	}
	ops := httptest.NewServer(e.Handler())
	t.Cleanup(ops.Close)
	metrics := get(t, ops.URL+"/metrics", http.StatusOK)
	for _, want := range []string{
		`sendhooks_jobs_waiting{held="memory"} 8`,
		`sendhooks_jobs_waiting{held="parked"} 0`,
		`sendhooks_host_groups_active 1`,
		`sendhooks_in_flight 8`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	g.release()
	finals := b.finals(t, n)
	wantAllOnce(t, finals, rc)
	if m := g.maxHeld.Load(); m != 8 {
		t.Errorf("the receiver had at most %d requests at once, want 8", m)
	}
	b.waitAcked(t)
	b.wantNothingPutBack(t, n)
}

// One fast receiver host: not one extra entry in the jobs stream.
func TestOneFastHostAddsNoStreamEntries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 4, 0
	b.start(t, cfg)
	const n = 600
	ctx := context.Background()
	pipe := b.rdb.Pipeline()
	for i := range n {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: cfg.JobStream,
			Values: []any{sendhooks.StreamField, job(rc.URL, fmt.Sprintf("fast-%d", i))}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	wantAllOnce(t, b.finals(t, n), rc)
	b.waitAcked(t)
	b.wantNothingPutBack(t, n)
}

// Two receiver hosts, both saturated: each gets half the workers.
func TestTwoHostsSplitTheWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ga, gb := newGate(t), newGate(t)
	ra := newReceiver(t, ga.respond)
	rb := newReceiverAt(t, "127.0.0.2", gb.respond)
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 8, 0
	cfg.RequestTimeout, cfg.VisibilityTimeout = 30*time.Second, time.Minute // the gates hold requests
	const each = 16
	b.addMixed(t, each, ra.URL, rb.URL)
	b.start(t, cfg)
	waitFor(t, 20*time.Second, "4 requests at each receiver", func() bool {
		return ga.held.Load() == 4 && gb.held.Load() == 4
	})
	if a, b := ga.maxHeld.Load(), gb.maxHeld.Load(); a != 4 || b != 4 {
		t.Errorf("at most %d and %d requests at once, want 4 and 4", a, b)
	}
	ga.release()
	gb.release()
	wantAllOnce(t, b.finals(t, 2*each), ra, rb)
	b.wantNothingPutBack(t, 2*each)
}

// A slow receiver host keeps to its share, half the workers, while a fast
// one's jobs flow; once the fast one has no more jobs the slow one gets
// every worker. The fast host's demand is remembered for 5 s here, not
// 1 s, so that a loaded machine's pauses between reads cannot look like
// the fast host having stopped.
func TestSlowHostStaysWithinItsShare(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGate(t)
	slow := newReceiverAt(t, "127.0.0.2", g.respond)
	var slowAtFast atomic.Int32 // the slow host's requests in flight, at most, seen at each fast request
	fast := newReceiver(t, func(_ int, _ *http.Request, w http.ResponseWriter) {
		n := g.held.Load()
		for m := slowAtFast.Load(); n > m && !slowAtFast.CompareAndSwap(m, n); m = slowAtFast.Load() {
		}
		w.WriteHeader(http.StatusOK)
	})
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 8, 0
	cfg.RequestTimeout, cfg.VisibilityTimeout = 30*time.Second, time.Minute // the gate holds requests for over 5 s
	const nSlow, nFast = 20, 200
	for i := range nFast {
		if i%10 == 0 {
			b.addJob(t, job(slow.URL, fmt.Sprintf("slow-%d", i/10)))
		}
		b.addJob(t, job(fast.URL, fmt.Sprintf("fast-%d", i)))
	}
	b.startTuned(t, cfg, func(e *Engine) { e.sched.memory = 5 * time.Second })
	waitFor(t, 20*time.Second, "all fast jobs delivered", func() bool { return len(fast.got()) == nFast })
	if m := slowAtFast.Load(); m > 4 {
		t.Errorf("the slow host had %d requests in flight while the fast one's jobs flowed, more than its share of 4", m)
	}
	waitFor(t, 20*time.Second, "the slow host, alone, to use every worker", func() bool { return g.held.Load() == 8 })
	g.release()
	wantAllOnce(t, b.finals(t, nSlow+nFast), slow, fast)
	b.wantNothingPutBack(t, nSlow+nFast)
}

// Subdomains of one registrable domain share one share: a.example.test and
// b.example.test (both resolved to loopback by a test resolver) together
// get half the workers beside another host, not a share each.
func TestSubdomainsShareOneShare(t *testing.T) {
	t.Parallel()
	b := setup(t)
	shared := newGate(t) // held by both subdomains' receivers
	other := newGate(t)
	ra, rb := newReceiver(t, shared.respond), newReceiver(t, shared.respond)
	rc := newReceiverAt(t, "127.0.0.2", other.respond)
	named := func(rc *receiver, host string) string {
		u, err := url.Parse(rc.URL)
		if err != nil {
			t.Fatal(err)
		}
		return "http://" + net.JoinHostPort(host, u.Port()) + "/hook"
	}
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 8, 0
	cfg.RequestTimeout, cfg.VisibilityTimeout = 30*time.Second, time.Minute // the gates hold requests
	const each = 12
	b.addMixed(t, each, named(ra, "a.example.test"), named(rb, "b.example.test"), rc.URL)
	b.startTuned(t, cfg, func(e *Engine) {
		d := &Dialer{AllowPrivate: true, Timeout: cfg.RequestTimeout, Resolver: newFakeResolver([]string{"127.0.0.1"})}
		e.http.conns.guard = d
	})
	waitFor(t, 20*time.Second, "4 requests at example.test and 4 at 127.0.0.2", func() bool {
		return shared.held.Load() == 4 && other.held.Load() == 4
	})
	if m := shared.maxHeld.Load(); m != 4 {
		t.Errorf("a.example.test and b.example.test had %d requests at once together, want one share of 4", m)
	}
	if len(ra.got()) == 0 || len(rb.got()) == 0 {
		t.Errorf("requests: %d to a.example.test, %d to b.example.test; want both served", len(ra.got()), len(rb.got()))
	}
	shared.release()
	other.release()
	wantAllOnce(t, b.finals(t, 3*each), ra, rb, rc)
}

// Jobs that wait with an engine for longer than the visibility timeout
// stay with it. A receiver host that takes 400 ms a request shares two
// workers with a fast one, so that its jobs, read along with the fast
// one's, wait parked for seconds. Their idle time is reset while they
// wait, so a second engine, which claims whatever is idle past the
// visibility timeout, takes none of them, and each is delivered once.
func TestWaitingJobsStayWithTheirEngine(t *testing.T) {
	t.Parallel()
	b := setup(t)
	slow := newReceiver(t, answerAfter(400*time.Millisecond))
	fast := newReceiverAt(t, "127.0.0.2", answer(http.StatusOK))
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 2, 0
	cfg.RequestTimeout = 2 * time.Second
	cfg.VisibilityTimeout = 3 * time.Second // a job must start within 1 s of its last reset
	cfg.RetrySchedule = []time.Duration{time.Hour}
	const each = 24 // about 5 s of work for the slow host
	b.addMixed(t, each, slow.URL, fast.URL)
	e, _ := b.startEngine(t, cfg)
	waitFor(t, 10*time.Second, "every job read by the first engine", func() bool {
		groups, err := b.rdb.XInfoGroups(context.Background(), cfg.JobStream).Result()
		return err == nil && len(groups) == 1 && groups[0].EntriesRead == 2*each
	})
	if _, p, _ := e.sched.counts(); p == 0 {
		t.Fatal("no job parked: the test does not show what it means to")
	}
	second := cfg
	second.ConsumerName = "second-engine"
	e2, _ := b.startEngine(t, second)

	wantAllOnce(t, b.finals(t, 2*each), slow, fast)
	if got := testutil.ToFloat64(e.metrics.expired) + testutil.ToFloat64(e2.metrics.expired); got != 0 {
		t.Errorf("%v jobs left for a claim, want none", got)
	}
	if got := testutil.ToFloat64(e2.metrics.succeeded); got != 0 {
		t.Errorf("the second engine claimed and delivered %v jobs waiting with the first, want none", got)
	}
	b.waitAcked(t)
	b.wantNothingPutBack(t, 2*each)
}

// Jobs parked for several host groups at once come back, in the rounds
// that read back the jobs of all of them together, each delivered once,
// and nothing goes back through Redis. Three
// slow hosts (100 ms a request) and three fast ones share six workers and
// twelve jobs in memory: a worker and two jobs in memory each, so that
// the slow hosts' jobs wait parked while the fast ones' flow.
func TestJobsParkedForManyHostsComeBackOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var slow, fast []*receiver
	var urls []string
	for i := range 6 {
		respond := answer(http.StatusOK)
		if i < 3 {
			respond = answerAfter(100 * time.Millisecond)
		}
		rc := newReceiverAt(t, fmt.Sprintf("127.0.0.%d", 2+i), respond)
		if i < 3 {
			slow = append(slow, rc)
		} else {
			fast = append(fast, rc)
		}
		urls = append(urls, rc.URL)
	}
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 6, 0
	const each = 8
	b.addMixed(t, each, urls...)
	e, _ := b.startEngine(t, cfg)
	waitFor(t, 10*time.Second, "every job read", func() bool {
		groups, err := b.rdb.XInfoGroups(context.Background(), cfg.JobStream).Result()
		return err == nil && len(groups) == 1 && groups[0].EntriesRead == 6*each
	})
	if _, p, _ := e.sched.counts(); p <= each-2 {
		t.Fatalf("%d jobs parked, want those of more than one slow host: the test does not show what it means to", p)
	}
	wantAllOnce(t, b.finals(t, 6*each), append(slow, fast...)...)
	b.waitAcked(t)
	b.wantNothingPutBack(t, 6*each)
}

// A job parked without being parsed (its host group read from its URL
// alone) that turns out bad when it is read back is refused then, with one
// failed status naming why, and the jobs around it are delivered once.
// Two workers for a slow host and a fast one: the slow host's later jobs,
// the bad one among them, wait parked while the fast one's flow.
func TestBadJobParkedUnparsedIsRefusedWhenReadBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	slow := newReceiver(t, answerAfter(100*time.Millisecond))
	fast := newReceiverAt(t, "127.0.0.2", answer(http.StatusOK))
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 2, 0
	const each = 8
	b.addMixed(t, each, slow.URL, fast.URL)
	bad := b.addJob(t, strings.Replace(job(slow.URL, "bad-secret"), "e99a18c428cb38d5f260853678922e03", "whsec_!!!", 1))
	b.addMixed(t, 2, fast.URL)
	e, _ := b.startEngine(t, cfg)
	waitFor(t, 10*time.Second, "every job read", func() bool {
		groups, err := b.rdb.XInfoGroups(context.Background(), cfg.JobStream).Result()
		return err == nil && len(groups) == 1 && groups[0].EntriesRead == 2*each+3
	})
	if !isParked(e.sched, bad) {
		t.Fatal("the bad job is not parked: the test does not show what it means to")
	}
	finals := b.finals(t, 2*each+3)
	got := finals[bad]
	if got.Status != sendhooks.StatusFailed || !strings.Contains(got.DeliveryError, "signing key") || got.NumberOfTries != 0 {
		t.Fatalf("the bad job's final status: %+v; want failed before any attempt, naming its signing key", got)
	}
	delete(finals, bad)
	for id, ev := range finals {
		if ev.Status != sendhooks.StatusSuccess {
			t.Errorf("job %s ended %s (%s), want success", id, ev.Status, ev.DeliveryError)
		}
	}
	if n, m := len(slow.got()), len(fast.got()); n != each || m != each+2 {
		t.Errorf("the receivers got %d and %d requests, want %d and %d", n, m, each, each+2)
	}
	if got := testutil.ToFloat64(e.metrics.badJobs); got != 1 {
		t.Errorf("%v bad jobs counted, want 1", got)
	}
	b.waitAcked(t)
}

// isParked tells whether the job of entry id is parked in s.
func isParked(s *scheduler, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		for _, r := range g.parked {
			if slices.Contains(r.ids, id) {
				return true
			}
		}
	}
	return false
}
