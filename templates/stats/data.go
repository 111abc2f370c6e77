// Package stats is the statistics page: the engine's health drawn as SVG
// on the server, each chart with its values as text for screen readers.
package stats

import (
	"fmt"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// Range is one choice of the page's time range.
type Range struct {
	// Name is the query value ("24h").
	Name string
	// Label is how the choice reads.
	Label string
	// Span is the length of the range, Bucket the width of its bars.
	Span, Bucket time.Duration
	// Per names the bucket width ("hour").
	Per string
}

// Ranges are the ranges the page offers; the first is the default.
var Ranges = []Range{
	{"24h", "Last 24 hours", 24 * time.Hour, time.Hour, "hour"},
	{"1h", "Last hour", time.Hour, 5 * time.Minute, "5 minutes"},
	{"7d", "Last 7 days", 7 * 24 * time.Hour, 6 * time.Hour, "6 hours"},
}

// Health is the engine's state as Redis shows it.
type Health struct {
	// Available says whether the figures below are known.
	Available bool
	// RetrySet is the number of jobs waiting in the retry set.
	RetrySet int64
	// Lag is the number of jobs in the stream no engine has read yet.
	Lag int64
	// Pending is the number of jobs read but not yet finished.
	Pending int64
	// Streams are the lengths of the engine's streams, which it trims.
	Streams []monitor.StreamLength
	// Problem says why the figures are not available.
	Problem string
}

// Data is what the page shows.
type Data struct {
	Range  Range
	Stats  monitor.Stats
	Health Health
}

// successRate is the success rate as text, or "—" without final hooks.
func (d Data) successRate() string {
	if d.Stats.SuccessRate == nil {
		return "—"
	}
	return percent(*d.Stats.SuccessRate)
}

func percent(r float64) string {
	return fmt.Sprintf("%.1f%%", 100*r)
}

// count is the number of hooks of a status in the range.
func (d Data) count(s sendhooks.Status) int {
	return d.Stats.ByStatus[s]
}

// bucketLabel names a bucket by its start, with the date only when the
// buckets are a day or wider apart.
func (d Data) bucketLabel(t time.Time) string {
	if d.Range.Bucket >= 6*time.Hour || d.Range.Span > 24*time.Hour {
		return t.UTC().Format("Jan 2 15:04")
	}
	return t.UTC().Format("15:04")
}

func (d Data) bucketRange(b monitor.Bucket) string {
	return d.bucketLabel(b.Start) + "–" + d.bucketLabel(b.Start.Add(d.Range.Bucket)) + " UTC"
}

// outcomes are the statuses the charts draw, in stacking order.
var outcomes = []sendhooks.Status{sendhooks.StatusSuccess, sendhooks.StatusFailed, sendhooks.StatusRetrying}
