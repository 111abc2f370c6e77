package monitor

import (
	"context"
	"math"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
)

// MaxStatsHooks bounds how many hooks one statistics query reads; a range
// holding more is answered from its newest MaxStatsHooks and marked
// truncated.
const MaxStatsHooks = 50_000

// MaxStatsBuckets bounds the number of time buckets of one statistics query.
const MaxStatsBuckets = 1000

// topEndpoints is how many failing endpoints the statistics list.
const topEndpoints = 10

// StatsQuery asks for statistics of the hooks created in [From, To].
type StatsQuery struct {
	From, To time.Time
	// Bucket is the width of the time buckets the counts are split into.
	Bucket time.Duration
}

// Stats describes the hooks created in a range.
type Stats struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Bucket string    `json:"bucket"`
	// Total is the number of hooks counted.
	Total int `json:"total"`
	// Truncated says that the range held more than MaxStatsHooks hooks and
	// only the newest were counted.
	Truncated bool                     `json:"truncated"`
	ByStatus  map[sendhooks.Status]int `json:"byStatus"`
	// Buckets counts the hooks by status per bucket of created time, oldest
	// first; every bucket of the range is listed, empty ones too.
	Buckets []Bucket `json:"buckets"`
	// SuccessRate is success / (success + failed), null without either.
	SuccessRate *float64 `json:"successRate"`
	// Latency summarises the durations of all the hooks' attempts.
	Latency Latency `json:"latency"`
	// FailingEndpoints are the URLs with the most failed hooks, most first.
	FailingEndpoints []Endpoint `json:"failingEndpoints"`
}

// Bucket is the count of hooks by status created in [Start, Start+width).
type Bucket struct {
	Start  time.Time                `json:"start"`
	Counts map[sendhooks.Status]int `json:"counts"`
}

// Latency gives attempt durations in milliseconds at the 50th, 95th and
// 99th percentile (nearest rank) of Count attempts.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
}

// Endpoint is a receiver URL with its failed and total hooks.
type Endpoint struct {
	URL         string  `json:"url"`
	Failed      int     `json:"failed"`
	Total       int     `json:"total"`
	FailureRate float64 `json:"failureRate"`
}

// Stats computes statistics over the hooks created in the query's range.
// FerretDB lacks most aggregation stages, so the hooks are read (at most
// MaxStatsHooks of them) and counted here.
func (s *Store) Stats(ctx context.Context, q StatsQuery) (Stats, error) {
	hooks, err := s.find(ctx, Filter{CreatedFrom: q.From, CreatedTo: q.To}.bson(),
		options.Find().SetSort(newestFirst).SetLimit(MaxStatsHooks+1).SetProjection(bson.D{
			{Key: "status", Value: 1}, {Key: "created", Value: 1}, {Key: "url", Value: 1}, {Key: "attempts", Value: 1},
		}))
	if err != nil {
		return Stats{}, err
	}
	st := Stats{From: q.From.UTC(), To: q.To.UTC(), Bucket: q.Bucket.String(), ByStatus: map[sendhooks.Status]int{}}
	if len(hooks) > MaxStatsHooks {
		hooks, st.Truncated = hooks[:MaxStatsHooks], true
	}
	st.Total = len(hooks)
	for start := q.From.UTC(); !start.After(q.To); start = start.Add(q.Bucket) {
		st.Buckets = append(st.Buckets, Bucket{Start: start, Counts: map[sendhooks.Status]int{}})
	}
	endpoints := map[string]*Endpoint{}
	var durations []float64
	for _, h := range hooks {
		st.ByStatus[h.Status]++
		if h.Created != nil && len(st.Buckets) > 0 {
			i := min(int(h.Created.Sub(st.From)/q.Bucket), len(st.Buckets)-1)
			st.Buckets[max(i, 0)].Counts[h.Status]++
		}
		e := endpoints[h.URL]
		if e == nil {
			e = &Endpoint{URL: h.URL}
			endpoints[h.URL] = e
		}
		e.Total++
		if h.Status == sendhooks.StatusFailed {
			e.Failed++
		}
		for _, a := range h.Attempts {
			durations = append(durations, a.DurationMs)
		}
	}
	if final := st.ByStatus[sendhooks.StatusSuccess] + st.ByStatus[sendhooks.StatusFailed]; final > 0 {
		rate := float64(st.ByStatus[sendhooks.StatusSuccess]) / float64(final)
		st.SuccessRate = &rate
	}
	st.Latency = latency(durations)
	st.FailingEndpoints = failing(endpoints)
	return st, nil
}

func latency(d []float64) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	rank := func(p float64) float64 {
		return d[max(int(math.Ceil(p*float64(len(d))))-1, 0)]
	}
	return Latency{Count: len(d), P50: rank(0.50), P95: rank(0.95), P99: rank(0.99)}
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
		if a.Failed != b.Failed {
			return b.Failed - a.Failed
		}
		if a.URL < b.URL {
			return -1
		}
		return 1
	})
	return out[:min(len(out), topEndpoints)]
}
