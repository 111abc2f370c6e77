package web

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

func TestStats(t *testing.T) {
	a := startAPI(t, APIConfig{})
	job := func(sid, url, created string, final sendhooks.Status, durations ...float64) []sendhooks.StatusEvent {
		var evs []sendhooks.StatusEvent
		for i, d := range durations {
			status := sendhooks.StatusRetrying
			if i == len(durations)-1 {
				status = final
			}
			ev := engineEvent(sid, i+1, status, d)
			ev.URL, ev.Created = url, ts(created)
			evs = append(evs, ev)
		}
		return evs
	}
	var evs []sendhooks.StatusEvent
	evs = append(evs, job("1-0", "https://u1.example/", "2026-01-02T10:00:00Z", sendhooks.StatusSuccess, 100, 200)...)
	evs = append(evs, job("2-0", "https://u2.example/", "2026-01-02T13:00:00Z", sendhooks.StatusFailed, 300, 400, 500)...)
	evs = append(evs, job("3-0", "https://u2.example/", "2026-01-02T13:30:00Z", sendhooks.StatusFailed, 50)...)
	evs = append(evs, job("4-0", "https://u1.example/", "2026-01-02T01:00:00Z", sendhooks.StatusRetrying, 10)...)
	evs = append(evs, oldEvent("out-of-range", "https://u2.example/", sendhooks.StatusFailed, "2026-01-03T00:00:00Z", ""))
	a.seed(t, evs...)

	var got monitor.Stats
	a.getJSON(t, "/api/sendhooks/v1/stats?from=2026-01-02&to=2026-01-02&bucket=6h", &got)
	rate := 1.0 / 3
	want := monitor.Stats{
		From: ts("2026-01-02T00:00:00Z").Time, To: ts("2026-01-02T23:59:59.999Z").Time, Bucket: "6h0m0s",
		Total:    4,
		ByStatus: map[sendhooks.Status]int{"success": 1, "failed": 2, "retrying": 1},
		Buckets: []monitor.Bucket{
			{Start: ts("2026-01-02T00:00:00Z").Time, Counts: map[sendhooks.Status]int{"retrying": 1}},
			{Start: ts("2026-01-02T06:00:00Z").Time, Counts: map[sendhooks.Status]int{"success": 1}},
			{Start: ts("2026-01-02T12:00:00Z").Time, Counts: map[sendhooks.Status]int{"failed": 2}},
			{Start: ts("2026-01-02T18:00:00Z").Time, Counts: map[sendhooks.Status]int{}},
		},
		SuccessRate: &rate,
		// Percentiles are the upper bounds of their latency bins: within
		// 9% above the exact 200 and 500.
		Latency:          monitor.Latency{Count: 7, P50: 205, P95: 531, P99: 531},
		FailingEndpoints: []monitor.Endpoint{{URL: "https://u2.example", Failed: 2, Total: 2, FailureRate: 1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stats\n got %+v\nwant %+v", got, want)
	}

	bad := []struct{ query, description string }{
		{"bucket=1s", `bucket must be a duration of at least 1m0s such as 1h or 15m, got "1s"`},
		{"from=2026-01-03&to=2026-01-02", `to must not be before from`},
		{"from=2026-01-01&to=2026-02-01&bucket=1m", `bucket 1m0s splits the range into 46080 buckets; at most 1000 are allowed`},
		{"from[$gt]=2026-01-01", `parameter "from[$gt]" is refused: its name is shaped as an operator or a field path (a name holds letters, digits, _ and - only); allowed: from, to, bucket`},
		{"From=2026-01-01", `unknown parameter "From": names are case-sensitive, did you mean from?`},
		{"from=2026-01-01&from=2026-01-02", `from must be given once, got 2 values`},
		{"to=01/02/2026", `to must be ` + dateForms + `, got "01/02/2026"`},
	}
	for _, b := range bad {
		status, _, body := a.do(t, http.MethodGet, "/api/sendhooks/v1/stats?"+b.query, nil)
		if want := errorBody(t, "BAD_PARAMETER", b.description); status != http.StatusBadRequest || body != want {
			t.Errorf("%s: %d %s, want 400 %s", b.query, status, body, want)
		}
	}

	// An unknown plain parameter is ignored, as the old API ignored it, and
	// the old clients' date forms read as the range above.
	var lenient monitor.Stats
	a.getJSON(t, "/api/sendhooks/v1/stats/?since=1h&_=1&from=2026-01-02+00:00:00&to=Fri,+02+Jan+2026+23:59:59.999+GMT&bucket=6h", &lenient)
	if !reflect.DeepEqual(lenient, want) {
		t.Fatalf("stats of the old forms\n got %+v\nwant %+v", lenient, want)
	}
}

// TestStatsBucketsCountedOnTheDates asks for ranges longer than the
// largest time.Duration (about 292 years): their buckets are counted on
// the dates, so the bound on buckets holds, to the bucket.
func TestStatsBucketsCountedOnTheDates(t *testing.T) {
	a := startAPI(t, APIConfig{})
	// 0000-01-01 to the end of 9999-12-31 is 3,652,425 days (25 cycles of
	// 400 years) less a millisecond: 87,658,200 hours less a millisecond.
	for query, description := range map[string]string{
		"from=0000-01-01&to=9999-12-31&bucket=2600h":  `bucket 2600h0m0s splits the range into 33715 buckets; at most 1000 are allowed`,
		"from=0000-01-01&to=9999-12-31&bucket=87658h": `bucket 87658h0m0s splits the range into 1001 buckets; at most 1000 are allowed`,
		"from=0000-01-01&to=2026-01-01&bucket=17520h": `bucket 17520h0m0s splits the range into 1014 buckets; at most 1000 are allowed`,
		"from=1000-01-01&to=1292-12-31&bucket=1m0.5s": `bucket 1m0.5s splits the range into 152830890 buckets; at most 1000 are allowed`,
	} {
		status, _, body := a.do(t, http.MethodGet, "/api/sendhooks/v1/stats?"+query, nil)
		if want := errorBody(t, "BAD_PARAMETER", description); status != http.StatusBadRequest || body != want {
			t.Errorf("%s: %d %.300s, want 400 %s", query, status, body, want)
		}
	}
	var st monitor.Stats
	a.getJSON(t, "/api/sendhooks/v1/stats?from=0000-01-01&to=9999-12-31&bucket=87700h", &st)
	if n := len(st.Buckets); n != 1000 || !st.Buckets[999].Start.Equal(time.Date(0, 1, 1, 999*87700, 0, 0, 0, time.UTC)) {
		t.Fatalf("%d buckets, the last at %v; want 1000", n, st.Buckets[len(st.Buckets)-1].Start)
	}
}
