package engine

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

func TestDeliversArticleJobsOnceSigned(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))

	// Half the jobs are written before the first engine start: the group
	// must read the stream from its beginning.
	const n = 20
	ids := map[string]string{} // streamId -> webhookId
	for i := range n / 2 {
		wid := fmt.Sprintf("webhook-%d", i)
		ids[b.addJob(t, job(rc.URL+"/hook", wid))] = wid
	}
	b.start(t, b.cfg)
	for i := n / 2; i < n; i++ {
		wid := fmt.Sprintf("webhook-%d", i)
		ids[b.addJob(t, job(rc.URL+"/hook", wid))] = wid
	}

	finals := b.finals(t, n)
	for sid, wid := range ids {
		ev := finals[sid]
		if ev.Status != sendhooks.StatusSuccess || ev.WebhookID != wid || ev.NumberOfTries != 1 ||
			ev.Attempt != 1 || ev.StatusCode != 200 || ev.Delivered.IsZero() || ev.DeliveryError != "" {
			t.Errorf("job %s: unexpected final event %+v", sid, ev)
		}
		if ev.Created.UnixMilli() != mustStreamMillis(t, sid) {
			t.Errorf("job %s: created %v is not the stream id's time", sid, ev.Created)
		}
		if string(ev.MetaData) != `{"ip_address": "192.168.1.1"}` {
			t.Errorf("job %s: metaData %s", sid, ev.MetaData)
		}
	}

	reqs := rc.got()
	if len(reqs) != n {
		t.Fatalf("receiver got %d requests, want %d (each job exactly once)", len(reqs), n)
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		wid := r.header.Get("webhook-id")
		if seen[wid] {
			t.Errorf("webhook %s delivered twice", wid)
		}
		seen[wid] = true
		wantBody := fmt.Sprintf(`{"order_id": "abc123", "amount": "100.00", "currency": "USD", "id": %q}`, wid)
		if string(r.body) != wantBody {
			t.Errorf("body of %s = %s, want exactly the job's data %s", wid, r.body, wantBody)
		}
		if err := verifyAsReceiver("e99a18c428cb38d5f260853678922e03", r.header, r.body, time.Now()); err != nil {
			t.Errorf("signature of %s does not verify: %v", wid, err)
		}
		if got := r.header.Get("X-Secret-Hash"); got != "e99a18c428cb38d5f260853678922e03" {
			t.Errorf("X-Secret-Hash = %q", got)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if ua := r.header.Get("User-Agent"); !strings.HasPrefix(ua, "Sendhooks/") {
			t.Errorf("User-Agent = %q", ua)
		}
	}
}

func mustStreamMillis(t *testing.T, id string) int64 {
	t.Helper()
	var ms, seq int64
	if _, err := fmt.Sscanf(id, "%d-%d", &ms, &seq); err != nil {
		t.Fatalf("stream id %q: %v", id, err)
	}
	return ms
}

func TestSecretHeaderCanBeTurnedOff(t *testing.T) {
	t.Parallel()
	_, _, rc := deliverOne(t, func(c *Config) { c.SendSecretHashHeader = false }, answer(http.StatusNoContent))
	h := rc.got()[0].header
	if h.Get("X-Secret-Hash") != "" {
		t.Errorf("secret header sent although turned off")
	}
	if h.Get("webhook-signature") == "" {
		t.Errorf("signature missing")
	}
}

func TestBadJobsFailClearlyAndGoodOnesAroundThemDeliver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusOK))
	b.start(t, b.cfg)

	good1 := b.addJob(t, job(rc.URL, "good-1"))
	malformed := b.addJob(t, `{"url": "http://x", "data": {`)
	noURL := b.addJob(t, `{"webhookId": "no-url", "data": {"a": 1}}`)
	ftp := b.addJob(t, `{"url": "ftp://files.example/x", "webhookId": "ftp-job", "data": {}}`)
	noData, err := b.rdb.XAdd(context.Background(), &redis.XAddArgs{
		Stream: b.cfg.JobStream, Values: []any{"payload", "{}"},
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	badKey := b.addJob(t, `{"url": "`+rc.URL+`", "data": {}, "secretHash": "whsec_not*base64"}`)
	const whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	good2 := b.addJob(t, `{"url": "`+rc.URL+`", "webhookId": "good-2", "data": {"n": 2}, "secretHash": "`+whsec+`"}`)

	finals := b.finals(t, 7)
	for _, id := range []string{good1, good2} {
		if finals[id].Status != sendhooks.StatusSuccess {
			t.Errorf("good job %s: %+v", id, finals[id])
		}
	}
	for id, want := range map[string]string{
		malformed: `the "data" field is not a valid job JSON object`,
		noURL:     `the job has no "url"`,
		ftp:       `the url "ftp://files.example/x" is not http or https`,
		noData:    `the stream entry has no "data" field (fields: "payload")`,
		badKey:    `secretHash's whsec_ value is not valid base64`,
	} {
		ev := finals[id]
		if ev.Status != sendhooks.StatusFailed || !strings.Contains(ev.DeliveryError, want) ||
			ev.NumberOfTries != 0 || ev.Attempt != 0 {
			t.Errorf("bad job %s: want failed with %q, got %+v", id, want, ev)
		}
	}
	if ev := finals[ftp]; ev.WebhookID != "ftp-job" || ev.URL != "ftp://files.example/x" {
		t.Errorf("bad job keeps what could be read of it: %+v", ev)
	}
	reqs := rc.got()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	for _, r := range reqs {
		if r.header.Get("webhook-id") != "good-2" {
			continue
		}
		if err := verifyAsReceiver(whsec, r.header, r.body, time.Now()); err != nil {
			t.Errorf("whsec_ signature does not verify: %v", err)
		}
	}
	b.waitAcked(t)
}

// waitAcked waits until the group has no pending entries.
func (b *bundle) waitAcked(t *testing.T) {
	t.Helper()
	waitFor(t, 10*time.Second, "every entry acknowledged", func() bool {
		p, err := b.rdb.XPending(context.Background(), b.cfg.JobStream, b.cfg.ConsumerGroup).Result()
		return err == nil && p.Count == 0
	})
}

func TestFailsTwiceThenDeliversOnAttemptThree(t *testing.T) {
	t.Parallel()
	b, final, rc := deliverOne(t, nil, failFirst(2, http.StatusInternalServerError, "database is down"))
	if final.Status != sendhooks.StatusSuccess || final.NumberOfTries != 3 || final.Attempt != 3 {
		t.Fatalf("final event: %+v", final)
	}
	var retries []sendhooks.StatusEvent
	for _, ev := range b.statuses(t) {
		if ev.Status == sendhooks.StatusRetrying {
			retries = append(retries, ev)
		}
	}
	if len(retries) != 2 {
		t.Fatalf("want 2 retry events, got %d: %+v", len(retries), retries)
	}
	for i, ev := range retries {
		if ev.Attempt != i+1 || ev.StatusCode != 500 || ev.StreamID != final.StreamID ||
			!strings.Contains(ev.DeliveryError, "500") || ev.Response != "database is down" ||
			ev.NextAttemptAt.IsZero() || ev.Job == "" {
			t.Errorf("retry event %d: %+v", i, ev)
		}
	}
	ids := map[string]bool{}
	for _, r := range rc.got() {
		ids[r.header.Get("webhook-id")] = true
	}
	if len(ids) != 1 || !ids["w-1"] {
		t.Errorf("webhook-id must stay the same across attempts: %v", ids)
	}
}

func TestAlwaysFailingEndsFailedAndDeadLettered(t *testing.T) {
	t.Parallel()
	b, final, rc := deliverOne(t, nil, answer(http.StatusInternalServerError))
	attempts := len(b.cfg.RetrySchedule) + 1
	if final.Status != sendhooks.StatusFailed || final.NumberOfTries != attempts ||
		!strings.Contains(final.DeliveryError, "500 Internal Server Error") {
		t.Fatalf("final event: %+v", final)
	}
	if n := len(rc.got()); n != attempts {
		t.Errorf("receiver got %d attempts, want %d", n, attempts)
	}
	dead, err := b.rdb.XRange(context.Background(), sendhooks.DeadLetterStream(b.cfg.JobStream), "-", "+").Result()
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead-letter stream: %v %v", dead, err)
	}
	if dead[0].Values["data"] != job(rc.URL, "w-1") || dead[0].Values["origin"] != final.StreamID {
		t.Errorf("dead letter keeps the job as written: %v", dead[0].Values)
	}
	b.waitAcked(t)
}

func TestAttemptCountsOutOfRangeGetTheirSchedule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, answer(http.StatusInternalServerError))
	b.start(t, b.cfg)
	// Counts that anyone who can write the stream may write: a schedule
	// starting after its attempt would have read before the schedule's
	// start, and a count near the integer limit would overflow.
	add := func(webhookID string, counts ...string) string {
		values := []any{sendhooks.StreamField, job(rc.URL, webhookID)}
		for i, name := range []string{sendhooks.FieldAttempt, sendhooks.FieldRunStart} {
			values = append(values, name, counts[i])
		}
		id, err := b.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: b.cfg.JobStream, Values: values}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	wantLast := map[string]int{ // the attempt each ends at: its schedule of 3 waits in full
		add("start-after", "1", "2"):            4,
		add("start-far-after", "3", "7"):        6,
		add("huge", "9223372036854775807", "1"): 4,
		add("zero", "0", "0"):                   4,
	}
	finals := b.finals(t, len(wantLast))
	for id, last := range wantLast {
		if ev := finals[id]; ev.Status != sendhooks.StatusFailed || ev.Attempt != last || ev.NumberOfTries != last {
			t.Errorf("job %s: final %s at attempt %d (%d tries), want failed at attempt %d", id, ev.Status, ev.Attempt, ev.NumberOfTries, last)
		}
	}
	if got, want := len(rc.got()), 4+4+4+4; got != want {
		t.Errorf("receiver got %d requests, want %d", got, want)
	}
	b.waitAcked(t)
}

func TestGoneEndsTheJobAtOnce(t *testing.T) {
	t.Parallel()
	_, final, _ := deliverOne(t, nil, answer(http.StatusGone))
	if final.Status != sendhooks.StatusFailed || final.NumberOfTries != 1 || !strings.Contains(final.DeliveryError, "410") {
		t.Fatalf("final event: %+v", final)
	}
}

func TestRedirectIsAFailedAttemptNotFollowed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	target := newReceiver(t, answer(http.StatusOK))
	rc := newReceiver(t, func(_ int, r *http.Request, w http.ResponseWriter) {
		http.Redirect(w, r, target.URL, http.StatusMovedPermanently)
	})
	cfg := b.cfg
	cfg.RetrySchedule = nil
	b.start(t, cfg)
	id := b.addJob(t, job(rc.URL, "moved"))
	final := b.finals(t, 1)[id]
	if final.Status != sendhooks.StatusFailed || final.StatusCode != 301 ||
		!strings.Contains(final.DeliveryError, "redirect to \""+target.URL+"\"") {
		t.Fatalf("final event: %+v", final)
	}
	if n := len(target.got()); n != 0 {
		t.Errorf("redirect was followed: target got %d requests", n)
	}
}

func TestRetryAfterMovesTheNextAttempt(t *testing.T) {
	t.Parallel()
	b, final, _ := deliverOne(t, nil, func(n int, _ *http.Request, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	if final.Status != sendhooks.StatusSuccess || final.NumberOfTries != 2 {
		t.Fatalf("final event: %+v", final)
	}
	retry := b.statuses(t)[0]
	if gap := retry.NextAttemptAt.Sub(retry.AttemptedAt.Time); gap < 2*time.Second || gap > 3*time.Second {
		t.Errorf("next attempt %v after the 429, want the 2s Retry-After (schedule says 50ms)", gap)
	}
	if final.AttemptedAt.Before(retry.NextAttemptAt.Time) {
		t.Errorf("attempt 2 at %v, before its due time %v", final.AttemptedAt, retry.NextAttemptAt)
	}
}

func TestRequestTimeoutFailsTheAttempt(t *testing.T) {
	t.Parallel()
	_, final, _ := deliverOne(t, func(c *Config) {
		c.RequestTimeout = 200 * time.Millisecond
		c.RetrySchedule = nil
	}, func(_ int, r *http.Request, _ http.ResponseWriter) { <-r.Context().Done() })
	if final.Status != sendhooks.StatusFailed || !strings.Contains(final.DeliveryError, "no answer within the request timeout") {
		t.Fatalf("final event: %+v", final)
	}
}

func TestPrivateTargetsRefusedByDefault(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var conns atomic.Int32
	rc := newReceiver(t, answer(http.StatusOK))
	rc.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	cfg := b.cfg
	cfg.AllowPrivateNetworks = false
	b.start(t, cfg)
	id := b.addJob(t, job(rc.URL, "ssrf"))
	final := b.finals(t, 1)[id]
	if final.Status != sendhooks.StatusFailed || final.NumberOfTries != 1 ||
		!strings.Contains(final.DeliveryError, "127.0.0.1 is a loopback address") ||
		!strings.Contains(final.DeliveryError, "allowPrivateNetworks") {
		t.Fatalf("final event: %+v", final)
	}
	if conns.Load() != 0 {
		t.Errorf("the receiver saw %d connections; the dial must be refused before connecting", conns.Load())
	}
}
