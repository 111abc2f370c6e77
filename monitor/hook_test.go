package monitor

import (
	"reflect"
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
