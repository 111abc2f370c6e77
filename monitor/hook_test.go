package monitor

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks"
)

func at(s string) sendhooks.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return sendhooks.Time{Time: t}
}

// attemptEvent is a new engine's event for attempt n of the job with
// stream id sid.
func attemptEvent(sid string, n int, status sendhooks.Status) Event {
	ev := sendhooks.StatusEvent{
		WebhookID: "wh-" + sid, Status: status, URL: "https://r.example/" + sid,
		Created: at("2026-01-01T10:00:00Z"), PayloadSize: 12, NumberOfTries: n,
		MessageID: "msg-" + sid, StreamID: sid, Attempt: n, DurationMs: float64(10 * n),
		AttemptedAt: sendhooks.Time{Time: at("2026-01-01T10:00:00Z").Add(time.Duration(n) * time.Minute)},
		Job:         `{"url":"https://r.example/` + sid + `","webhookId":"wh-` + sid + `","data":{"n":1},"secretHash":"s3cret"}`,
		MetaData:    []byte(`{"tenant":"t1"}`),
	}
	switch status {
	case sendhooks.StatusRetrying:
		ev.StatusCode, ev.DeliveryError, ev.Response = 500, "receiver answered 500", "oops"
		ev.NextAttemptAt = sendhooks.Time{Time: ev.AttemptedAt.Add(time.Minute)}
	case sendhooks.StatusFailed:
		ev.StatusCode, ev.DeliveryError = 500, "receiver answered 500"
	case sendhooks.StatusSuccess:
		ev.StatusCode, ev.Delivered = 200, sendhooks.Time{Time: ev.AttemptedAt.Add(time.Second)}
	}
	return Event{StatusEvent: ev}
}

// permutations calls f with every order of evs.
func permutations(evs []Event, f func([]Event)) {
	var rec func(int)
	rec = func(k int) {
		if k == len(evs) {
			f(append([]Event(nil), evs...))
			return
		}
		for i := k; i < len(evs); i++ {
			evs[k], evs[i] = evs[i], evs[k]
			rec(k + 1)
			evs[k], evs[i] = evs[i], evs[k]
		}
	}
	rec(0)
}

func TestApplyIsOrderProofAndIdempotent(t *testing.T) {
	tests := []struct {
		name       string
		events     []Event
		wantStatus sendhooks.Status
		wantTries  int
	}{
		{"retried then failed", []Event{
			attemptEvent("1-0", 1, sendhooks.StatusRetrying),
			attemptEvent("1-0", 2, sendhooks.StatusRetrying),
			attemptEvent("1-0", 3, sendhooks.StatusFailed),
		}, sendhooks.StatusFailed, 3},
		{"retried then delivered", []Event{
			attemptEvent("2-0", 1, sendhooks.StatusRetrying),
			attemptEvent("2-0", 2, sendhooks.StatusSuccess),
		}, sendhooks.StatusSuccess, 2},
		{"retried by hand after failing, retrying again", []Event{
			attemptEvent("3-0", 1, sendhooks.StatusFailed),
			attemptEvent("3-0", 2, sendhooks.StatusRetrying),
		}, sendhooks.StatusRetrying, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var first *Hook
			permutations(tt.events, func(order []Event) {
				// Every event twice, the duplicates at the end.
				var h Hook
				for _, ev := range append(order, order...) {
					h.Apply(ev)
				}
				if h.Status != tt.wantStatus || h.NumberOfTries != tt.wantTries || len(h.Attempts) != len(tt.events) {
					t.Fatalf("order %v: status %q, tries %d, %d attempts; want %q, %d, %d",
						ids(order), h.Status, h.NumberOfTries, len(h.Attempts), tt.wantStatus, tt.wantTries, len(tt.events))
				}
				for i, a := range h.Attempts {
					if a.Number != i+1 {
						t.Fatalf("order %v: attempt %d has number %d", ids(order), i, a.Number)
					}
				}
				if first == nil {
					first = &h
				} else if !reflect.DeepEqual(*first, h) {
					t.Fatalf("order %v gives\n%+v\nwant\n%+v", ids(order), h, *first)
				}
				for _, ev := range order {
					if h.Apply(ev) {
						t.Fatalf("applying attempt %d again changed the hook", ev.Attempt)
					}
				}
			})
		})
	}
}

func ids(evs []Event) []int {
	out := make([]int, len(evs))
	for i, ev := range evs {
		out[i] = ev.Attempt
	}
	return out
}

func TestApplyKeepsDeliveredAndErrorOfWinningEvent(t *testing.T) {
	var h Hook
	h.Apply(attemptEvent("9-0", 2, sendhooks.StatusSuccess))
	h.Apply(attemptEvent("9-0", 1, sendhooks.StatusRetrying))
	want := at("2026-01-01T10:02:01Z").Time
	if h.Status != sendhooks.StatusSuccess || h.Error != "" || h.Delivered == nil || !h.Delivered.Equal(want) {
		t.Fatalf("got status %q, error %q, delivered %v; want success, no error, %v", h.Status, h.Error, h.Delivered, want)
	}
	if h.Attempts[0].Error != "receiver answered 500" || h.Attempts[0].StatusCode != 500 || h.Attempts[0].Response != "oops" {
		t.Fatalf("attempt 1 = %+v", h.Attempts[0])
	}
}

// oldEngineEvent is the old engine's event for one whole job: no streamId,
// no attempt number, read under the status-stream entry id entry.
func oldEngineEvent(entry, webhookID string, status sendhooks.Status, tries int, created string) Event {
	ev := sendhooks.StatusEvent{
		WebhookID: webhookID, Status: status, URL: "https://r.example/" + entry,
		Created: at(created), PayloadSize: 40, NumberOfTries: tries,
	}
	switch status {
	case sendhooks.StatusSuccess:
		ev.Delivered = sendhooks.Time{Time: ev.Created.Add(time.Second)}
	case sendhooks.StatusFailed:
		ev.DeliveryError = "webhook sending failed with status: 500, response body: " + entry
	}
	return Event{EntryID: entry, StatusEvent: ev}
}

// TestApplyOldEngineEventsNewestWins merges the old engine's events of
// jobs that share a webhookId: the newest event (the later status-stream
// entry; the event's time when entries tie) gives the status, error,
// delivered time, tries and url, in every order, with duplicates.
func TestApplyOldEngineEventsNewestWins(t *testing.T) {
	const early, late = "2024-05-24T10:00:00Z", "2024-05-24T11:00:00Z"
	tests := []struct {
		name       string
		events     []Event
		want       Event // the event whose outcome the hook shows
		wantStatus sendhooks.Status
		wantTries  int
	}{
		{"a failure, then a success", []Event{
			oldEngineEvent("1716544800000-0", "order-42", sendhooks.StatusFailed, 5, early),
			oldEngineEvent("1716548400000-0", "order-42", sendhooks.StatusSuccess, 2, late),
		}, oldEngineEvent("1716548400000-0", "order-42", sendhooks.StatusSuccess, 2, late), sendhooks.StatusSuccess, 2},
		{"a success, then a failure", []Event{
			oldEngineEvent("1716544800000-0", "order-42", sendhooks.StatusSuccess, 0, early),
			oldEngineEvent("1716548400000-0", "order-42", sendhooks.StatusFailed, 5, late),
		}, oldEngineEvent("1716548400000-0", "order-42", sendhooks.StatusFailed, 5, late), sendhooks.StatusFailed, 5},
		{"entries compare as numbers, not text", []Event{
			oldEngineEvent("999-9", "order-42", sendhooks.StatusSuccess, 0, late),
			oldEngineEvent("1000-0", "order-42", sendhooks.StatusFailed, 5, early),
			oldEngineEvent("1000-10", "order-42", sendhooks.StatusSuccess, 1, early),
			oldEngineEvent("1000-2", "order-42", sendhooks.StatusFailed, 5, late),
		}, oldEngineEvent("1000-10", "order-42", sendhooks.StatusSuccess, 1, early), sendhooks.StatusSuccess, 1},
		{"no entry ids: the later time wins", []Event{
			oldEngineEvent("", "order-42", sendhooks.StatusFailed, 5, late),
			oldEngineEvent("", "order-42", sendhooks.StatusSuccess, 0, early),
		}, oldEngineEvent("", "order-42", sendhooks.StatusFailed, 5, late), sendhooks.StatusFailed, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var first *Hook
			permutations(tt.events, func(order []Event) {
				var h Hook
				for _, ev := range append(order, order...) {
					h.Apply(ev)
				}
				w := tt.want
				wantDelivered := w.Delivered.Time
				if h.ID != "order-42" || h.ExternalID != "order-42" || h.StreamID != "" || h.Status != tt.wantStatus ||
					h.NumberOfTries != tt.wantTries || h.Error != w.DeliveryError || h.URL != w.URL || len(h.Attempts) != 0 ||
					(h.Delivered == nil) != wantDelivered.IsZero() || h.Delivered != nil && !h.Delivered.Equal(wantDelivered) ||
					!h.Created.Equal(at(early).Time) {
					t.Fatalf("order %v: %+v\nwant the outcome of %+v", entries(order), h, w)
				}
				if first == nil {
					first = &h
				} else if !reflect.DeepEqual(*first, h) {
					t.Fatalf("order %v gives\n%+v\nwant\n%+v", entries(order), h, *first)
				}
				for _, ev := range order {
					if h.Apply(ev) {
						t.Fatalf("applying entry %q again changed the hook", ev.EntryID)
					}
				}
			})
		})
	}
}

func entries(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.EntryID
	}
	return out
}

// TestApplyOldEventAfterAStoredOldHook: a hook stored before entry ids
// were kept has none, so the next old-engine event of its webhookId wins.
func TestApplyOldEventAfterAStoredOldHook(t *testing.T) {
	var h Hook
	h.Apply(oldEngineEvent("1716544800000-0", "order-42", sendhooks.StatusFailed, 5, "2024-05-24T10:00:00Z"))
	h.StatusEntry, h.StatusAt = "", nil // as such a hook is stored
	if !h.Apply(oldEngineEvent("1716548400000-0", "order-42", sendhooks.StatusSuccess, 0, "2024-05-24T11:00:00Z")) || h.Status != sendhooks.StatusSuccess {
		t.Fatalf("the later success did not win: %+v", h)
	}
}

// TestApplyOldEngineEventWithoutWebhookID: each event that names no job
// is a hook of its own, under its entry id.
func TestApplyOldEngineEventWithoutWebhookID(t *testing.T) {
	var h Hook
	ev := oldEngineEvent("1716544800000-7", "", sendhooks.StatusSuccess, 0, "2024-05-24T10:00:00Z")
	h.Apply(ev)
	if h.ID != "1716544800000-7" || h.IDCopy != h.ID || h.ExternalID != "" || h.Status != sendhooks.StatusSuccess || h.NumberOfTries != 1 {
		t.Fatalf("%+v", h)
	}
}

// TestApplyMixedEventsAreOrderProof: a webhookId that equals a jobs-stream
// id puts both engines' events in one hook; the new engine's outrank the
// old one's, in every order.
func TestApplyMixedEventsAreOrderProof(t *testing.T) {
	const sid = "1716544800000-0"
	evs := []Event{
		oldEngineEvent("1716548400000-0", sid, sendhooks.StatusFailed, 9, "2024-05-24T09:00:00Z"),
		attemptEvent(sid, 1, sendhooks.StatusRetrying),
		attemptEvent(sid, 2, sendhooks.StatusSuccess),
		oldEngineEvent("1716548400001-0", sid, sendhooks.StatusSuccess, 0, "2024-05-24T12:00:00Z"),
	}
	var first *Hook
	permutations(evs, func(order []Event) {
		var h Hook
		for _, ev := range append(order, order...) {
			h.Apply(ev)
		}
		if h.Status != sendhooks.StatusSuccess || h.NumberOfTries != 2 || h.StatusEntry != "" || len(h.Attempts) != 2 {
			t.Fatalf("order %v: %+v", entries(order), h)
		}
		if first == nil {
			first = &h
		} else if !reflect.DeepEqual(*first, h) {
			t.Fatalf("order %v gives\n%+v\nwant\n%+v", entries(order), h, *first)
		}
	})
}

// TestApplyNewestEventWithoutURL: when the newest event names no url, the
// url an older one named stays, in every order.
func TestApplyNewestEventWithoutURL(t *testing.T) {
	older := oldEngineEvent("1716544800000-0", "order-42", sendhooks.StatusFailed, 5, "2024-05-24T10:00:00Z")
	newer := oldEngineEvent("1716548400000-0", "order-42", sendhooks.StatusSuccess, 0, "2024-05-24T11:00:00Z")
	newer.URL = ""
	permutations([]Event{older, newer}, func(order []Event) {
		var h Hook
		for _, ev := range order {
			h.Apply(ev)
		}
		if h.Status != sendhooks.StatusSuccess || h.URL != older.URL {
			t.Fatalf("order %v: status %s, url %q; want success, %q", entries(order), h.Status, h.URL, older.URL)
		}
	})
}

// TestApplyRandomEventsAreOrderProof merges random mixes of the two
// engines' events of one hook (entries with ties and gaps, some read
// without an entry id, every status) in random orders with duplicates:
// every order gives the same hook, and applying an event again changes
// nothing.
func TestApplyRandomEventsAreOrderProof(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 5))
	statuses := []sendhooks.Status{sendhooks.StatusSuccess, sendhooks.StatusFailed, sendhooks.StatusRetrying}
	const key = "1716544800000-0"
	for round := range 500 {
		var evs []Event
		for range 1 + rng.IntN(6) {
			st := statuses[rng.IntN(len(statuses))]
			if rng.IntN(4) == 0 {
				evs = append(evs, attemptEvent(key, 1+rng.IntN(3), st))
				continue
			}
			entry := fmt.Sprintf("1716544800%03d-%d", rng.IntN(3), rng.IntN(11))
			if rng.IntN(5) == 0 {
				entry = ""
			}
			ev := oldEngineEvent(entry, key, st, rng.IntN(6), fmt.Sprintf("2024-05-24T1%d:00:00Z", rng.IntN(3)))
			ev.URL = fmt.Sprintf("https://r.example/%d", rng.IntN(3))
			evs = append(evs, ev)
		}
		var first *Hook
		for range 6 {
			order := slices.Clone(evs)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			order = append(order, order[rng.IntN(len(order))])
			var h Hook
			for _, ev := range order {
				h.Apply(ev)
			}
			if first == nil {
				first = &h
			} else if !reflect.DeepEqual(*first, h) {
				t.Fatalf("round %d: events %+v\nin order %v give\n%+v\nwant\n%+v", round, evs, entries(order), h, *first)
			}
			for _, ev := range evs {
				if h.Apply(ev) {
					t.Fatalf("round %d: applying %+v again changed the hook", round, ev)
				}
			}
		}
	}
}
