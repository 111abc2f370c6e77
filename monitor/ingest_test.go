package monitor_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

func ptime(s string) *time.Time {
	t := monitor.At(s).Time
	return &t
}

func TestIngestThreeSpellings(t *testing.T) {
	e := newTestEnv(t)
	reg := e.startIngester(t, "m1", nil)
	for _, line := range monitor.FixtureLines(t) {
		e.add(t, string(line))
	}
	e.addEvents(t, monitor.AttemptEvent("1700000000000-0", 1, sendhooks.StatusRetrying), monitor.AttemptEvent("1700000000000-0", 2, sendhooks.StatusSuccess))

	// The four hooks exist before the last event is applied: wait for every
	// event written and acknowledged.
	eventually(t, 20*time.Second, "5 events ingested and acknowledged", func() bool {
		return counter(t, reg, "sendhooks_monitor_events_ingested_total") >= 5 && e.pending(t) == 0
	})
	got := e.hooks(t)
	if len(got) != 4 {
		t.Fatalf("%d hooks stored, want 4", len(got))
	}
	want := map[string]monitor.Hook{
		"webhook-12345": {URL: "https://receiver.example/hook", Status: sendhooks.StatusSuccess,
			Created: ptime("2024-05-24T23:06:16.053Z"), Delivered: ptime("2024-05-24T23:06:16.181Z"),
			ExternalID: "webhook-12345", PayloadSize: 245, NumberOfTries: 1},
		"webhook-12346": {URL: "https://receiver.example/hook", Status: sendhooks.StatusFailed,
			Created: ptime("2024-05-24T23:07:01.5Z"), Error: "webhook sending failed with status: 500, response body: ",
			ExternalID: "webhook-12346", PayloadSize: 245, NumberOfTries: 5},
		"webhook-12347": {URL: "https://receiver.example/hook", Status: sendhooks.StatusSuccess,
			Created: ptime("2024-05-25T10:00:00Z"), Delivered: ptime("2024-05-25T10:00:01Z"),
			ExternalID: "webhook-12347", NumberOfTries: 1},
	}
	for id, w := range want {
		h := got[id]
		if h.IDCopy != id || h.URL != w.URL || h.Status != w.Status || !h.Created.Equal(*w.Created) ||
			!sameTime(h.Delivered, w.Delivered) || h.Error != w.Error || h.ExternalID != w.ExternalID ||
			h.PayloadSize != w.PayloadSize || h.NumberOfTries != w.NumberOfTries || len(h.Attempts) != 0 || h.Version != 1 {
			t.Errorf("%s:\n got %+v\nwant %+v", id, h, w)
		}
	}
	h := got["1700000000000-0"]
	if h.Status != sendhooks.StatusSuccess || h.ExternalID != "wh-1700000000000-0" || h.MessageID != "msg-1700000000000-0" ||
		h.StreamID != "1700000000000-0" || h.NumberOfTries != 2 || len(h.Attempts) != 2 ||
		h.Attempts[0].StatusCode != 500 || h.Attempts[0].Error != "receiver answered 500" || h.Attempts[0].DurationMs != 10 ||
		!sameTime(h.Attempts[0].NextAttemptAt, ptime("2026-01-01T10:02:00Z")) ||
		h.Attempts[1].StatusCode != 200 || string(h.MetaData) != `{"tenant":"t1"}` || h.Job == "" {
		t.Errorf("new engine's hook: %+v", h)
	}
	if n := counter(t, reg, "sendhooks_monitor_events_ingested_total"); n != 5 {
		t.Errorf("ingested %v events, want 5", n)
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func TestIngestOutOfOrderAndDuplicateEvents(t *testing.T) {
	e := newTestEnv(t)
	e.startIngester(t, "m1", func(in *monitor.Ingester) { in.BatchSize = 2 }) // several batches
	const sid = "1700000000001-0"
	e.addEvents(t,
		monitor.AttemptEvent(sid, 3, sendhooks.StatusFailed),
		monitor.AttemptEvent(sid, 1, sendhooks.StatusRetrying),
		monitor.AttemptEvent(sid, 3, sendhooks.StatusFailed),
		monitor.AttemptEvent(sid, 2, sendhooks.StatusRetrying),
		monitor.AttemptEvent(sid, 1, sendhooks.StatusRetrying),
	)
	last := e.add(t, `{"webhookId":"sentinel","status":"success"}`)
	eventually(t, 20*time.Second, "sentinel stored", func() bool { _, ok := e.hooks(t)["sentinel"]; return ok })
	eventually(t, 5*time.Second, "all acknowledged", func() bool { return e.pending(t) == 0 })
	h := e.hooks(t)[sid]
	if h.Status != sendhooks.StatusFailed || h.NumberOfTries != 3 || len(h.Attempts) != 3 || h.Error != "receiver answered 500" {
		t.Fatalf("after %s: %+v", last, h)
	}

	// A retry by hand: attempts 4 (retrying) and 5 (success) arrive, 5 first.
	e.addEvents(t, monitor.AttemptEvent(sid, 5, sendhooks.StatusSuccess), monitor.AttemptEvent(sid, 4, sendhooks.StatusRetrying))
	eventually(t, 20*time.Second, "hand retry stored", func() bool { return len(e.hooks(t)[sid].Attempts) == 5 })
	h = e.hooks(t)[sid]
	if h.Status != sendhooks.StatusSuccess || h.NumberOfTries != 5 || h.Error != "" || h.Delivered == nil {
		t.Fatalf("after the hand retry: %+v", h)
	}
}

// TestIngestUnparsableEvents writes events the monitor cannot read among
// good ones: each is set aside in the rejected stream with the reason, as
// it was written, counted and acknowledged, and the good one is stored.
func TestIngestUnparsableEvents(t *testing.T) {
	e := newTestEnv(t)
	reg := e.startIngester(t, "m1", nil)
	notJSON := e.add(t, "not json")
	noStatus := e.add(t, `{"webhookId":"no status"}`)
	noData, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: testStream, Values: []any{"other", "x"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	badTime := e.add(t, `{"webhookId":"bad time","status":"success","created":"yesterday"}`)
	e.add(t, `{"webhookId":"good","status":"failed","deliveryError":"gone"}`)
	eventually(t, 20*time.Second, "the good event stored", func() bool { return e.hooks(t)["good"].Status == sendhooks.StatusFailed })
	eventually(t, 5*time.Second, "all acknowledged", func() bool { return e.pending(t) == 0 })
	if n := counter(t, reg, "sendhooks_monitor_event_parse_failures_total"); n != 4 {
		t.Fatalf("%v parse failures counted, want 4", n)
	}
	if n := counter(t, reg, "sendhooks_monitor_events_rejected_total"); n != 0 {
		t.Fatalf("%v events counted as refused by the store, want 0", n)
	}
	if n := len(e.hooks(t)); n != 1 {
		t.Fatalf("%d hooks stored, want 1", n)
	}
	set, err := e.rdb.XRange(context.Background(), sendhooks.RejectedStream(testStream), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"data": "not json", "entryId": notJSON, "reason": "the event does not parse: not a JSON object: invalid character 'o' in literal null (expecting 'u')"},
		{"data": `{"webhookId":"no status"}`, "entryId": noStatus, "reason": "the event does not parse: the event has no status"},
		{"data": "", "entryId": noData, "reason": `the event does not parse: the entry has no "data" field`},
		{"data": `{"webhookId":"bad time","status":"success","created":"yesterday"}`, "entryId": badTime,
			"reason": `the event does not parse: not a status event: timestamp "yesterday" is neither RFC 3339 nor Go's time format`},
	}
	if len(set) != len(want) {
		t.Fatalf("rejected stream: %d entries %v, want %d", len(set), set, len(want))
	}
	for i, w := range want {
		if !reflect.DeepEqual(set[i].Values, w) {
			t.Errorf("set aside %d:\n got %v\nwant %v", i, set[i].Values, w)
		}
	}
}

// flow writes two events (attempt 1 retrying, attempt 2 success) for each of
// the jobs [from, to).
func flow(t *testing.T, e *testEnv, from, to int) {
	for i := from; i < to; i++ {
		sid := fmt.Sprintf("1700000000%03d-0", i)
		e.addEvents(t, monitor.AttemptEvent(sid, 1, sendhooks.StatusRetrying), monitor.AttemptEvent(sid, 2, sendhooks.StatusSuccess))
	}
}

// checkFlow checks that the jobs [0, n) each have exactly their two attempts.
func checkFlow(t *testing.T, e *testEnv, n int) {
	t.Helper()
	hooks := e.hooks(t)
	if len(hooks) != n {
		t.Fatalf("%d hooks, want %d", len(hooks), n)
	}
	for id, h := range hooks {
		if h.Status != sendhooks.StatusSuccess || len(h.Attempts) != 2 || h.Attempts[0].Number != 1 || h.Attempts[1].Number != 2 {
			t.Fatalf("%s: %+v", id, h)
		}
	}
}

func flowDone(e *testEnv, t *testing.T, n int) func() bool {
	return func() bool {
		hooks := e.hooks(t)
		done := 0
		for _, h := range hooks {
			if h.Status == sendhooks.StatusSuccess && len(h.Attempts) == 2 {
				done++
			}
		}
		return done == n
	}
}

func TestIngestResumesPendingAndClaimsStaleEvents(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	if err := e.rdb.XGroupCreateMkStream(ctx, testStream, testGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	flow(t, e, 0, 6)
	// Two consumers read three jobs each and die before acknowledging.
	for _, consumer := range []string{"m1", "dead"} {
		err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: testGroup, Consumer: consumer, Streams: []string{testStream, ">"}, Count: 6}).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.pending(t); n != 12 {
		t.Fatalf("%d pending, want 12", n)
	}
	// m1 comes back: it takes its own pending events first, and the dead
	// consumer's once they are stale.
	e.startIngester(t, "m1", func(in *monitor.Ingester) { in.ClaimIdle, in.ClaimEvery = 200*time.Millisecond, 100*time.Millisecond })
	eventually(t, 30*time.Second, "all 6 jobs stored", flowDone(e, t, 6))
	eventually(t, 5*time.Second, "all acknowledged", func() bool { return e.pending(t) == 0 })
	checkFlow(t, e, 6)
}

func TestIngestSurvivesRedisCrash(t *testing.T) {
	e := newTestEnv(t)
	e.startIngester(t, "m1", nil)
	flow(t, e, 0, 10)
	eventually(t, 20*time.Second, "first jobs stored", flowDone(e, t, 10))
	e.redis.Kill(t)
	// The ingester keeps retrying while Redis is gone.
	e.redis.Restart(t)
	flow(t, e, 10, 20)
	eventually(t, 30*time.Second, "all 20 jobs stored", flowDone(e, t, 20))
	eventually(t, 5*time.Second, "all acknowledged", func() bool { return e.pending(t) == 0 })
	checkFlow(t, e, 20)
}

// TestIngestSetsAsideEventsTheStoreRefuses writes an event the store
// refuses for good (a 1 MiB webhookId, which Redis accepts) in the middle
// of a flow: it is set aside in the rejected stream with the reason and
// acknowledged, and every other event of the flow is stored.
func TestIngestSetsAsideEventsTheStoreRefuses(t *testing.T) {
	e := newTestEnv(t)
	reg := e.startIngester(t, "m1", func(in *monitor.Ingester) { in.BatchSize = 64 })
	flow(t, e, 0, 10)
	huge := strings.Repeat("x", 1<<20)
	poison := e.add(t, `{"webhookId":"`+huge+`","status":"failed","url":"http://127.0.0.1:9/p"}`)
	longURL := e.add(t, `{"webhookId":"long-url","status":"success","url":"http://127.0.0.1:9/`+strings.Repeat("u", 9000)+`"}`)
	flow(t, e, 10, 40)

	eventually(t, 60*time.Second, "all 40 jobs stored", flowDone(e, t, 40))
	eventually(t, 10*time.Second, "all acknowledged", func() bool { return e.pending(t) == 0 })
	checkFlow(t, e, 40)
	if n := counter(t, reg, "sendhooks_monitor_events_rejected_total"); n != 2 {
		t.Fatalf("%v events rejected, want 2", n)
	}
	if n := counter(t, reg, "sendhooks_monitor_events_ingested_total"); n != 80 {
		t.Fatalf("%v events ingested, want 80", n)
	}
	set, err := e.rdb.XRange(context.Background(), sendhooks.RejectedStream(testStream), "-", "+").Result()
	if err != nil || len(set) != 2 {
		t.Fatalf("rejected stream: %d entries (%v), want 2", len(set), err)
	}
	for i, want := range []struct{ entry, reason string }{
		{poison, fmt.Sprintf("the webhookId is %d bytes long; at most 1024 are kept", len(huge))},
		{longURL, "the url is 9019 bytes long; at most 8192 are kept"},
	} {
		m := set[i].Values
		if m["entryId"] != want.entry || !strings.Contains(m["reason"].(string), want.reason) || len(m["data"].(string)) < 9000 {
			t.Errorf("set aside %d: entryId %v, reason %q; want %s, %q, and the event itself", i, m["entryId"], m["reason"], want.entry, want.reason)
		}
	}
}
