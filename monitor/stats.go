package monitor

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/sendhooks/sendhooks"
)

// MaxStatsBuckets bounds the number of time buckets of one statistics query.
const MaxStatsBuckets = 1000

// topEndpoints is how many failing receivers the statistics list.
const topEndpoints = 10

// StatsQuery asks for statistics of the hooks created in [From, To].
type StatsQuery struct {
	From, To time.Time
	// Bucket is the width of the time buckets the counts are split into.
	Bucket time.Duration
}

// CountKind is the rollup the query's counts are read from: hours when
// its buckets are whole hours, else minutes. Latency and endpoints are
// always read from hourly rollups (RollupLatency, RollupReceiver).
func (q StatsQuery) CountKind() RollupKind {
	if q.Bucket%time.Hour == 0 {
		return RollupHour
	}
	return RollupMinute
}

// RollupRange is the range of rollup buckets of the given width that the
// query reads: those that start in [From truncated to the width, To].
func (q StatsQuery) RollupRange(width time.Duration) (from, to time.Time) {
	return q.From.UTC().Truncate(width), q.To.UTC()
}

// Stats describes the hooks created in a range. It is read from rollups of
// whole minutes (or hours, for hourly buckets), so the range's ends are
// rounded down to the minute or hour.
type Stats struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Bucket string    `json:"bucket"`
	// Total is the number of hooks counted.
	Total int `json:"total"`
	// Truncated is always false: statistics come from rollups and count
	// every hook. It stays for clients of earlier versions.
	Truncated bool                     `json:"truncated"`
	ByStatus  map[sendhooks.Status]int `json:"byStatus"`
	// Buckets counts the hooks by status per bucket of created time, oldest
	// first; every bucket of the range is listed, empty ones too.
	Buckets []Bucket `json:"buckets"`
	// SuccessRate is success / (success + failed), null without either.
	SuccessRate *float64 `json:"successRate"`
	// Latency summarises the durations of all the hooks' attempts.
	Latency Latency `json:"latency"`
	// FailingEndpoints are the receivers with the most failed hooks, most
	// first.
	FailingEndpoints []Endpoint `json:"failingEndpoints"`
}

// Bucket is the count of hooks by status created in [Start, Start+width).
type Bucket struct {
	Start  time.Time                `json:"start"`
	Counts map[sendhooks.Status]int `json:"counts"`
}

// Latency gives attempt durations in milliseconds at the 50th, 95th and
// 99th percentile (nearest rank) of Count attempts. Each is the upper
// bound of its latency bin, within 9% of the exact value.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
}

// Endpoint is a receiver with its failed and total hooks.
type Endpoint struct {
	// URL is the receiver (see ReceiverOf): the scheme, host and port of
	// the hooks' URLs, "" for hooks whose URL has no host. Its JSON name
	// stays "url" for clients of earlier versions, where it held whole
	// URLs.
	URL         string  `json:"url"`
	Failed      int     `json:"failed"`
	Total       int     `json:"total"`
	FailureRate float64 `json:"failureRate"`
}

// BuildStats assembles the statistics of q from rollup rows: counts of
// q.CountKind() and RollupLatency and RollupReceiver rows, each of the
// range RollupRange gives for its width. Rows outside the range are
// ignored.
func BuildStats(q StatsQuery, rows []RollupRow) Stats {
	st := Stats{From: q.From.UTC(), To: q.To.UTC(), Bucket: q.Bucket.String(), ByStatus: map[sendhooks.Status]int{}}
	for start := st.From; !start.After(st.To); start = start.Add(q.Bucket) {
		st.Buckets = append(st.Buckets, Bucket{Start: start, Counts: map[sendhooks.Status]int{}})
	}
	counts := q.CountKind()
	endpoints := map[string]*Endpoint{}
	bins := map[int]int64{}
	for _, r := range rows {
		from, to := q.RollupRange(r.Kind.Width())
		if r.N <= 0 || r.Bucket.Before(from) || r.Bucket.After(to) {
			continue
		}
		switch r.Kind {
		case counts:
			n := int(r.N)
			st.ByStatus[r.Status] += n
			st.Total += n
			if len(st.Buckets) > 0 {
				i := int(r.Bucket.Sub(st.From) / q.Bucket)
				st.Buckets[min(max(i, 0), len(st.Buckets)-1)].Counts[r.Status] += n
			}
		case RollupReceiver:
			e := endpoints[r.URL]
			if e == nil {
				e = &Endpoint{URL: r.URL}
				endpoints[r.URL] = e
			}
			e.Total += int(r.N)
			if r.Status == sendhooks.StatusFailed {
				e.Failed += int(r.N)
			}
		case RollupLatency:
			bins[r.Bin] += r.N
		}
	}
	if final := st.ByStatus[sendhooks.StatusSuccess] + st.ByStatus[sendhooks.StatusFailed]; final > 0 {
		rate := float64(st.ByStatus[sendhooks.StatusSuccess]) / float64(final)
		st.SuccessRate = &rate
	}
	st.Latency = latency(bins)
	st.FailingEndpoints = failing(endpoints)
	return st
}

// latency reads the percentiles off the histogram of bins.
func latency(bins map[int]int64) Latency {
	var total int64
	for _, n := range bins {
		total += n
	}
	if total == 0 {
		return Latency{}
	}
	order := slices.Sorted(maps.Keys(bins))
	rank := func(p float64) float64 {
		want := max(int64(p*float64(total)+0.999999999), 1) // nearest rank
		var seen int64
		for _, b := range order {
			if seen += bins[b]; seen >= want {
				return LatencyBinUpper(b)
			}
		}
		return LatencyBinUpper(order[len(order)-1])
	}
	return Latency{Count: int(total), P50: rank(0.50), P95: rank(0.95), P99: rank(0.99)}
}

func failing(endpoints map[string]*Endpoint) []Endpoint {
	out := []Endpoint{}
	for _, e := range endpoints {
		if e.Failed > 0 {
			e.FailureRate = float64(e.Failed) / float64(e.Total)
			out = append(out, *e)
		}
	}
	slices.SortFunc(out, func(a, b Endpoint) int {
		return cmp.Or(cmp.Compare(b.Failed, a.Failed), cmp.Compare(a.URL, b.URL))
	})
	return out[:min(len(out), topEndpoints)]
}
