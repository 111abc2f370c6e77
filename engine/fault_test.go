package engine

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// Fault tests: each runs a flow of jobs through real processes and servers
// (redis-server, HTTP receivers on loopback, the engine binary where a
// process must die), injects one fault, and then checks that every job
// ended as expected with exactly one final status (b.finals fails on a
// second one).

// perWebhook counts the requests the receiver got for each webhook-id.
func perWebhook(rc *receiver) map[string]int {
	counts := map[string]int{}
	for _, r := range rc.got() {
		counts[r.header.Get("webhook-id")]++
	}
	return counts
}

// wantSuccess fails unless every job in ids ended in success on attempt
// wantAttempt (0: any attempt).
func wantSuccess(t *testing.T, finals map[string]sendhooks.StatusEvent, ids []string, wantAttempt int) {
	t.Helper()
	for _, id := range ids {
		f, ok := finals[id]
		switch {
		case !ok:
			t.Errorf("job %s has no final status", id)
		case f.Status != sendhooks.StatusSuccess:
			t.Errorf("job %s ended %s: %+v", id, f.Status, f)
		case wantAttempt != 0 && f.Attempt != wantAttempt:
			t.Errorf("job %s succeeded on attempt %d, want %d", id, f.Attempt, wantAttempt)
		}
	}
}

// countStatus counts the status events with status s.
func countStatus(events []sendhooks.StatusEvent, s sendhooks.Status) int {
	n := 0
	for _, ev := range events {
		if ev.Status == s {
			n++
		}
	}
	return n
}

// pendingCount is the number of entries of the jobs stream that the group
// has read and not acknowledged.
func (b *bundle) pendingCount(t *testing.T) int64 {
	t.Helper()
	p, err := b.rdb.XPending(context.Background(), b.cfg.JobStream, b.cfg.ConsumerGroup).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	return p.Count
}

// firstRequestHangs is a receiver behaviour: the first request for each
// webhook-id hangs until the engine gives up on it; later ones get 200.
func firstRequestHangs() func(int, *http.Request, http.ResponseWriter) {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(_ int, r *http.Request, w http.ResponseWriter) {
		id := r.Header.Get("webhook-id")
		mu.Lock()
		first := !seen[id]
		seen[id] = true
		mu.Unlock()
		if first {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// TestFaultSurvivorFinishesAKilledEnginesJobs runs two engines in one group,
// a real process and an in-process survivor, each holding four requests at
// a gated receiver, with four retries scheduled; the process is killed -9
// for good. The survivor claims the dead engine's pending jobs after its
// visibility timeout, runs the scheduled retries, and delivers the rest.
func TestFaultSurvivorFinishesAKilledEnginesJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := newGate(t)
	gated := newReceiver(t, g.respond)
	flaky := newReceiver(t, failFirst(4, http.StatusServiceUnavailable, "warming up"))
	cfg := b.cfg
	cfg.NumWorkers, cfg.MaxPerHost = 4, 4
	cfg.RequestTimeout = 20 * time.Second // held requests must not time out
	cfg.RetrySchedule = []time.Duration{5 * time.Second}

	doomed := cfg
	doomed.ConsumerName = "doomed"
	doomed.VisibilityTimeout = time.Minute
	retryIDs := b.addJobs(t, flaky.URL, "retry", 4)
	proc := startProcess(t, doomed)
	waitFor(t, 20*time.Second, "4 retries scheduled by the doomed engine", func() bool {
		return countStatus(b.statuses(t), sendhooks.StatusRetrying) == 4
	})
	heldIDs := b.addJobs(t, gated.URL, "held", 16)
	waitFor(t, 10*time.Second, "4 requests held for the doomed engine", func() bool { return g.held.Load() == 4 })

	survivor := cfg
	survivor.ConsumerName = "survivor"
	survivor.VisibilityTimeout = time.Second
	b.start(t, survivor)
	waitFor(t, 10*time.Second, "4 more requests held for the survivor", func() bool { return g.held.Load() == 8 })

	ctx := context.Background()
	orphans, err := b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: cfg.JobStream, Group: cfg.ConsumerGroup,
		Consumer: "doomed", Start: "-", End: "+", Count: 100}).Result()
	if want := jobsHeld(cfg.NumWorkers); err != nil || len(orphans) != want {
		t.Fatalf("doomed engine holds %d pending entries (%v), want %d", len(orphans), err, want)
	}
	inFlightAtKill := perWebhook(gated) // the requests held at the gate, by both engines
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()
	if n, err := b.rdb.ZCard(ctx, sendhooks.RetrySet(cfg.JobStream)).Result(); err != nil || n != 4 {
		t.Fatalf("retry set holds %d entries (%v) after the kill, want the 4 scheduled retries", n, err)
	}
	g.release()

	finals := b.finals(t, 20)
	wantSuccess(t, finals, retryIDs, 2)
	wantSuccess(t, finals, heldIDs, 0)
	orphaned := map[string]bool{}
	for _, o := range orphans {
		orphaned[o.ID] = true
	}
	counts := perWebhook(gated)
	cutOff := 0
	for _, id := range heldIDs {
		wid := finals[id].WebhookID
		want := 1
		if orphaned[id] {
			// Cut off by the kill at the receiver, or read ahead and not
			// started: delivered by the survivor once more either way.
			want += inFlightAtKill[wid]
			cutOff += inFlightAtKill[wid]
		}
		if got := counts[wid]; got != want {
			t.Errorf("job %s (%s) reached the receiver %d times, want %d", id, wid, got, want)
		}
	}
	if cutOff != cfg.NumWorkers {
		t.Errorf("%d of the doomed engine's jobs were at the receiver when it was killed, want %d", cutOff, cfg.NumWorkers)
	}
	if n := len(flaky.got()); n != 8 {
		t.Errorf("flaky receiver got %d requests, want 4 failed and 4 retried", n)
	}
	t.Logf("requests per webhook at the gated receiver: %v", counts)
	b.waitAcked(t)
}

// TestFaultReceiverDownThenUp sends jobs to a receiver whose port refuses
// connections, then opens it on the same address: every job is retried
// until it gets through, and no refused attempt reached the receiver.
func TestFaultReceiverDownThenUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	addr := rc.Listener.Addr().String()
	rc.Listener.Close() // down: connection refused
	cfg := b.cfg
	cfg.RetrySchedule = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond,
		400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond}
	b.start(t, cfg)
	const n = 10
	ids := b.addJobs(t, rc.URL, "down", n)
	waitFor(t, 10*time.Second, "a refused attempt for every job", func() bool {
		refused := map[string]bool{}
		for _, ev := range b.statuses(t) {
			if ev.Status == sendhooks.StatusRetrying {
				refused[ev.StreamID] = true
			}
		}
		return len(refused) == n
	})

	ln, err := net.Listen("tcp", addr) // up again, same address
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	// Served by the receiver's own http.Server, whose connections its Close
	// tracks; this listener is closed first (cleanups run last-in first-out).
	t.Cleanup(func() { ln.Close() })
	go func() { _ = rc.Config.Serve(ln) }()

	finals := b.finals(t, n)
	wantSuccess(t, finals, ids, 0)
	events := b.statuses(t)
	counts := perWebhook(rc)
	for _, id := range ids {
		f := finals[id]
		if f.Attempt < 2 {
			t.Errorf("job %s succeeded on attempt %d, want a retry after the refusal", id, f.Attempt)
		}
		retries := 0
		for _, ev := range events {
			if ev.StreamID == id && ev.Status == sendhooks.StatusRetrying {
				retries++
			}
		}
		if retries != f.Attempt-1 {
			t.Errorf("job %s: %d retrying events before success on attempt %d", id, retries, f.Attempt)
		}
		if counts[f.WebhookID] != 1 {
			t.Errorf("job %s reached the receiver %d times, want once", id, counts[f.WebhookID])
		}
	}
	b.waitAcked(t)
}

// TestFaultReceiverHangsThenAnswers sends jobs to a receiver that hangs on
// the first request of each job: the attempt times out, is retried, and
// the second attempt succeeds.
func TestFaultReceiverHangsThenAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, firstRequestHangs())
	cfg := b.cfg
	cfg.RequestTimeout = 300 * time.Millisecond
	b.start(t, cfg)
	const n = 8
	ids := b.addJobs(t, rc.URL, "hang", n)
	finals := b.finals(t, n)
	wantSuccess(t, finals, ids, 2)
	for _, ev := range b.statuses(t) {
		if ev.Status == sendhooks.StatusRetrying && ev.StatusCode != 0 {
			t.Errorf("timed-out attempt recorded with status code %d: %+v", ev.StatusCode, ev)
		}
	}
	if got := countStatus(b.statuses(t), sendhooks.StatusRetrying); got != n {
		t.Errorf("%d retrying events, want one timeout per job (%d)", got, n)
	}
	for id, c := range perWebhook(rc) {
		if c != 2 {
			t.Errorf("webhook %s reached the receiver %d times, want 2", id, c)
		}
	}
	b.waitAcked(t)
}

// TestFaultReceiverFlapping sends jobs to a receiver that alternates 500
// and 200 by request count: each 200 ends one job and each 500 schedules
// one retry, so 2n requests deliver n jobs.
func TestFaultReceiverFlapping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, func(n int, _ *http.Request, w http.ResponseWriter) {
		if n%2 == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	cfg := b.cfg
	cfg.RetrySchedule = make([]time.Duration, 10)
	for i := range cfg.RetrySchedule {
		cfg.RetrySchedule[i] = 20 * time.Millisecond
	}
	b.start(t, cfg)
	const n = 20
	ids := b.addJobs(t, rc.URL, "flap", n)
	finals := b.finals(t, n)
	wantSuccess(t, finals, ids, 0)
	attempts := 0
	for _, id := range ids {
		attempts += finals[id].Attempt
	}
	if attempts != 2*n {
		t.Errorf("final events count %d attempts in all, want %d", attempts, 2*n)
	}
	if got := countStatus(b.statuses(t), sendhooks.StatusRetrying); got != n {
		t.Errorf("%d retrying events, want one per 500 (%d)", got, n)
	}
	if got := len(rc.got()); got != 2*n {
		t.Errorf("receiver got %d requests, want %d", got, 2*n)
	}
	b.waitAcked(t)
}

// TestFaultStatusStreamUnwritable makes every status write fail (the status
// stream's key holds a string, so XADD fails with WRONGTYPE) while the
// receiver answers 200. No job may be acknowledged without its final
// status: they stay pending and are delivered again (same webhook-id);
// once the key is removed, each ends with exactly one final status.
func TestFaultStatusStreamUnwritable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if err := b.rdb.Set(ctx, b.cfg.StatusStream, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, answer(http.StatusOK))
	cfg := b.cfg
	cfg.VisibilityTimeout = time.Second
	cfg.RequestTimeout = 500 * time.Millisecond
	b.start(t, cfg)
	const n = 5
	ids := b.addJobs(t, rc.URL, "unrecorded", n)

	waitFor(t, 10*time.Second, "every webhook at the receiver", func() bool { return len(perWebhook(rc)) == n })
	waitFor(t, 10*time.Second, "every webhook delivered twice, or the jobs acknowledged", func() bool {
		for _, c := range perWebhook(rc) {
			if c < 2 {
				return b.pendingCount(t) == 0
			}
		}
		return true
	})
	if p := b.pendingCount(t); p != n {
		kind, _ := b.rdb.Type(ctx, b.cfg.StatusStream).Result()
		t.Fatalf("%d of %d jobs still pending while %s is a %s: jobs were acknowledged without "+
			"their status event, so their final status is lost", p, n, b.cfg.StatusStream, kind)
	}

	if err := b.rdb.Del(ctx, b.cfg.StatusStream).Err(); err != nil {
		t.Fatal(err)
	}
	finals := b.finals(t, n)
	wantSuccess(t, finals, ids, 1)
	counts := perWebhook(rc)
	duplicates := 0
	for _, id := range ids {
		duplicates += counts[finals[id].WebhookID] - 1
	}
	t.Logf("redeliveries while the status stream was unwritable: %d (per webhook-id: %v)", duplicates, counts)
	b.waitAcked(t)
}

// TestFaultRedisKilledMidFlow kills redis-server with SIGKILL while jobs
// are being delivered and retries are scheduled, and restarts it from its
// append-only file: the engine reconnects by itself, and every job, the
// scheduled retries included, is delivered.
func TestFaultRedisKilledMidFlow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ok := newReceiver(t, answer(http.StatusOK))
	flaky := newReceiver(t, failFirst(10, http.StatusBadGateway, ""))
	cfg := b.cfg
	cfg.VisibilityTimeout = 2 * time.Second
	cfg.RetrySchedule = []time.Duration{4 * time.Second}
	e, _ := b.startEngine(t, cfg)
	retryIDs := b.addJobs(t, flaky.URL, "retry", 10)
	before := b.addJobs(t, ok.URL, "before", 10)
	waitFor(t, 10*time.Second, "10 retries scheduled", func() bool {
		return countStatus(b.statuses(t), sendhooks.StatusRetrying) == 10
	})

	b.redis.Kill(t)
	waitFor(t, 10*time.Second, "the engine to notice Redis is gone", func() bool { return !e.redisOK.Load() })
	b.redis.Restart(t)
	if n, err := b.rdb.ZCard(context.Background(), sendhooks.RetrySet(cfg.JobStream)).Result(); err != nil || n != 10 {
		t.Fatalf("retry set holds %d entries (%v) after the restart, want 10", n, err)
	}
	after := b.addJobs(t, ok.URL, "after", 10)

	finals := b.finals(t, 30)
	wantSuccess(t, finals, retryIDs, 2)
	wantSuccess(t, finals, append(before, after...), 1)
	counts := perWebhook(ok)
	if len(counts) != 20 {
		t.Errorf("receiver saw %d distinct webhooks, want 20", len(counts))
	}
	t.Logf("requests per webhook (a delivery cut by the kill may be repeated): %v", counts)
	if !e.redisOK.Load() {
		t.Error("engine still reports Redis unavailable")
	}
	b.waitAcked(t)
}

// replyCutter is a TCP relay between engines and redis-server on loopback
// that can be told to lose one reply: whatever redis-server answers (after
// it has executed the command) is dropped and both sides of the connection
// are closed, as when a connection breaks between a write and its reply.
type replyCutter struct {
	addr          string
	mu            sync.Mutex // guards the markers and cuts
	replyMarker   []byte     // when set, the next reply holding it is lost
	requestMarker []byte     // when set, the reply to the next request holding it is lost
	cuts          int        // replies lost
}

func newReplyCutter(t *testing.T, upstream string) *replyCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := &replyCutter{addr: ln.Addr().String()}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				client.Close()
				continue
			}
			go c.relay(client, server)
		}
	}()
	return c
}

// relay copies requests to server and replies back, but for a lost one.
func (c *replyCutter) relay(client, server net.Conn) {
	defer client.Close()
	defer server.Close()
	var loseNext atomic.Bool // the reply to a marked request is on its way
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				c.mu.Lock()
				if c.requestMarker != nil && bytes.Contains(buf[:n], c.requestMarker) {
					loseNext.Store(true)
					c.requestMarker = nil
				}
				c.mu.Unlock()
				if _, werr := server.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				server.Close()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			c.mu.Lock()
			lose := loseNext.Load()
			if c.replyMarker != nil && bytes.Contains(buf[:n], c.replyMarker) {
				lose, c.replyMarker = true, nil
			}
			if lose {
				c.cuts++
			}
			c.mu.Unlock()
			if lose {
				return
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// cutOnce loses the next reply that holds marker (which must fit in one
// read of a loopback reply), and no other.
func (c *replyCutter) cutOnce(marker string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replyMarker = []byte(marker)
}

// cutReplyTo loses the reply to the next request that holds marker (which
// must fit in one read of a loopback request), and no other.
func (c *replyCutter) cutReplyTo(marker string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requestMarker = []byte(marker)
}

func (c *replyCutter) lost() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cuts
}

// TestFaultLostRecordReplyWritesOnce loses the reply to the transaction that
// records a delivered job (redis-server has executed it; the engine sees
// the connection break). The engine cannot tell whether the write happened
// and writes again; the job must still end with exactly one final status.
// One worker makes it deterministic: the second job is worked only once the
// first job's recording is over.
func TestFaultLostRecordReplyWritesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cut := newReplyCutter(t, b.redis.Addr())
	g := newGate(t)
	rc := newReceiver(t, g.respond)
	cfg := b.cfg
	cfg.Redis.Address = cut.addr
	cfg.NumWorkers, cfg.MaxPerHost = 1, 1
	b.start(t, cfg)
	first := b.addJob(t, job(rc.URL, "lost-reply"))
	waitFor(t, 10*time.Second, "the delivery held at the receiver", func() bool { return g.held.Load() == 1 })

	cut.cutReplyTo(`"webhookId":"lost-reply"`) // in the status event the outcome's script call carries
	g.release()
	waitFor(t, 10*time.Second, "the outcome recorded and its reply lost", func() bool {
		return b.pendingCount(t) == 0 && countFinal(b.statuses(t)) == 1 && cut.lost() == 1
	})

	second := b.addJob(t, job(rc.URL, "after-lost-reply"))
	finals := b.finals(t, 2)
	wantSuccess(t, finals, []string{first, second}, 1)
	if n := len(rc.got()); n != 2 {
		t.Errorf("receiver got %d requests, want 2", n)
	}
	if got := countFinal(b.statuses(t)); got != 2 {
		t.Errorf("status stream holds %d final events for 2 jobs", got)
	}
}

// TestFaultLostReadReplyIsReadAgain loses the reply to the XREADGROUP that
// took a job: redis-server has put it on the engine's pending list, the
// engine never saw it. With a visibility timeout far beyond the test's
// deadline, only reading its own pending list again after the failed read
// delivers the job, once.
func TestFaultLostReadReplyIsReadAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cut := newReplyCutter(t, b.redis.Addr())
	rc := newReceiver(t, answer(http.StatusOK))
	cfg := b.cfg
	cfg.Redis.Address = cut.addr
	cfg.VisibilityTimeout = 10 * time.Minute
	e, _ := b.startEngine(t, cfg)
	waitFor(t, 10*time.Second, "the engine to start", func() bool { return e.redisOK.Load() })

	// Only the reply carrying the job is lost: the engine's reconnection
	// and its other commands go through.
	cut.cutOnce("lost-read")
	id := b.addJob(t, job(rc.URL, "lost-read"))
	waitFor(t, 10*time.Second, "the reply carrying the job lost", func() bool { return cut.lost() == 1 })

	wantSuccess(t, b.finals(t, 1), []string{id}, 1)
	if n := len(rc.got()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	b.waitAcked(t)
}
