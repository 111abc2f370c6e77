package monitor_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// oldEngineStatus is the status event of the old Go engine (sendhooks-engine,
// adapter.WebhookDeliveryStatus), field for field: no streamId, no attempt
// number, times as Go's time.Time.String(), numberOfTries counting the
// failed attempts, delivered "" unless the job succeeded.
type oldEngineStatus struct {
	WebhookID     string `json:"webhookId"`
	Status        string `json:"status"`
	DeliveryError string `json:"deliveryError"`
	URL           string `json:"url"`
	Created       string `json:"created"`
	PayloadSize   int    `json:"payloadSize"`
	NumberOfTries int    `json:"numberOfTries"`
	Delivered     string `json:"delivered"`
}

// addOldEngineEvent writes ev as the old engine did (PublishStatus): one
// XADD of the JSON as bytes under the field "data".
func (e *testEnv) addOldEngineEvent(t *testing.T, ev oldEngineStatus) string {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	id, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: testStream, Values: map[string]any{"data": b}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestIngestOldEngineEvents ingests the old engine's events as it wrote
// them into a real SQLite store: two jobs that share a webhookId show the
// newer outcome (a failure then a success is a success, and the other way
// round a failure), each event without a webhookId is a webhook of its
// own under its entry id, and reading every event again (the group moved
// back to the start, as after a lost acknowledgement) changes no webhook
// and no count.
func TestIngestOldEngineEvents(t *testing.T) {
	e := newTestEnv(t)
	reg := e.startIngester(t, "m1", func(in *monitor.Ingester) { in.BatchSize = 2 })
	// The old engine's times: time.Now().String(), monotonic reading
	// and local zone included.
	now := time.Now()
	t0, t1 := now.Add(-50*time.Minute), now.Add(-20*time.Minute)
	failure := func(id string, created time.Time) oldEngineStatus {
		return oldEngineStatus{WebhookID: id, Status: "failed", URL: "http://127.0.0.1:9/hook",
			DeliveryError: "webhook sending failed with status: 500, response body: down",
			Created:       created.String(), PayloadSize: 64, NumberOfTries: 5}
	}
	success := func(id string, created time.Time, tries int) oldEngineStatus {
		return oldEngineStatus{WebhookID: id, Status: "success", URL: "http://127.0.0.1:9/hook",
			Created: created.String(), PayloadSize: 64, NumberOfTries: tries,
			Delivered: created.Add(1500 * time.Millisecond).String()}
	}
	e.addOldEngineEvent(t, failure("order-42", t0))
	e.addOldEngineEvent(t, success("order-43", t0, 0))
	orphanOK := e.addOldEngineEvent(t, success("", t0, 0))
	e.addOldEngineEvent(t, success("order-42", t1, 2))
	orphanKO := e.addOldEngineEvent(t, failure("", t1))
	e.addOldEngineEvent(t, failure("order-43", t1))

	eventually(t, 20*time.Second, "6 events ingested and acknowledged", func() bool {
		return counter(t, reg, "sendhooks_monitor_events_ingested_total") == 6 && e.pending(t) == 0
	})
	ms := func(t time.Time) *time.Time { u := t.UTC().Truncate(time.Millisecond); return &u }
	want := map[string]monitor.Hook{
		"order-42": {Status: sendhooks.StatusSuccess, ExternalID: "order-42", Created: ms(t0),
			Delivered: ms(t1.Add(1500 * time.Millisecond)), NumberOfTries: 2},
		"order-43": {Status: sendhooks.StatusFailed, ExternalID: "order-43", Created: ms(t0),
			Error: "webhook sending failed with status: 500, response body: down", NumberOfTries: 5},
		orphanOK: {Status: sendhooks.StatusSuccess, Created: ms(t0), Delivered: ms(t0.Add(1500 * time.Millisecond)), NumberOfTries: 1},
		orphanKO: {Status: sendhooks.StatusFailed, Created: ms(t1),
			Error: "webhook sending failed with status: 500, response body: down", NumberOfTries: 5},
	}
	check := func(when string) map[string]monitor.Hook {
		t.Helper()
		got := e.hooks(t)
		if len(got) != len(want) {
			t.Fatalf("%s: %d hooks stored (%v), want %d", when, len(got), slices.Sorted(maps.Keys(got)), len(want))
		}
		for id, w := range want {
			h, ok := got[id]
			if !ok || h.IDCopy != id || h.StreamID != "" || h.URL != "http://127.0.0.1:9/hook" || h.Status != w.Status ||
				h.ExternalID != w.ExternalID || !h.Created.Equal(*w.Created) || !sameTime(h.Delivered, w.Delivered) ||
				h.Error != w.Error || h.NumberOfTries != w.NumberOfTries || h.PayloadSize != 64 || len(h.Attempts) != 0 {
				t.Errorf("%s: %s:\n got %+v\nwant %+v", when, id, h, w)
			}
		}
		// The API's detail finds a webhook without a webhookId by its entry id.
		if h, err := e.store.Get(context.Background(), orphanKO); err != nil || h.ID != orphanKO {
			t.Errorf("%s: Get(%s) = %s, %v", when, orphanKO, h.ID, err)
		}
		return got
	}
	first := check("after ingestion")
	stats := func() monitor.Stats {
		st, err := e.store.Stats(context.Background(), monitor.StatsQuery{From: now.Add(-2 * time.Hour), To: now.Add(time.Hour), Bucket: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := stats()
	if st.Total != 4 || st.ByStatus[sendhooks.StatusSuccess] != 2 || st.ByStatus[sendhooks.StatusFailed] != 2 {
		t.Fatalf("stats: total %d, by status %v; want 4: 2 success, 2 failed", st.Total, st.ByStatus)
	}

	// Every event read again, in the stream's order, as a monitor does
	// when its acknowledgements were lost.
	if err := e.rdb.XGroupSetID(context.Background(), testStream, testGroup, "0").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "6 events ingested again", func() bool {
		return counter(t, reg, "sendhooks_monitor_events_ingested_total") == 12 && e.pending(t) == 0
	})
	// And once more straight into the store, newest first.
	msgs, err := e.rdb.XRevRange(context.Background(), testStream, "+", "-").Result()
	if err != nil {
		t.Fatal(err)
	}
	var evs []monitor.Event
	for _, m := range msgs {
		ev, err := monitor.ParseEvent([]byte(m.Values[sendhooks.StreamField].(string)))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, monitor.Event{EntryID: m.ID, StatusEvent: ev})
	}
	if err := e.store.Apply(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	again := check("after reading every event again")
	for id, h := range again {
		if h.Version != first[id].Version {
			t.Errorf("%s was written again: version %d, then %d", id, first[id].Version, h.Version)
		}
	}
	if st2 := stats(); st2.Total != st.Total || st2.ByStatus[sendhooks.StatusSuccess] != 2 || st2.ByStatus[sendhooks.StatusFailed] != 2 {
		t.Fatalf("stats after reading again: total %d, by status %v; want 4: 2 success, 2 failed", st2.Total, st2.ByStatus)
	}
}
