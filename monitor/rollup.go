package monitor

import (
	"math"
	"strings"
	"time"

	"github.com/sendhooks/sendhooks"
)

// Rollups are counters kept at ingest, so that statistics and list totals
// read a bounded number of rows whatever is stored. Each hook counts once
// in every rollup its created time falls in: a rollup is a function of the
// hooks stored, so a store keeps it right by adding the difference between
// a hook's new and old contribution in the same write as the hook (see
// RollupDelta). Duplicate and reordered events change no hook and so no
// rollup.

// RollupKind names a family of rollup counters.
type RollupKind string

// The rollup families.
const (
	// RollupMinute counts hooks by status per minute of created.
	RollupMinute RollupKind = "m"
	// RollupHour counts hooks by status per hour of created.
	RollupHour RollupKind = "h"
	// RollupReceiver counts hooks by receiver (ReceiverOf their URL) and
	// status per hour of created: as many counters as receivers, however
	// many distinct URLs (a token in each) they are sent to.
	RollupReceiver RollupKind = "r"
	// RollupEndpoint counted hooks by their whole URL per hour, one
	// counter per webhook when every URL differs. Earlier versions wrote
	// it; a store's Setup turns its counters into RollupReceiver ones, and
	// nothing writes or reads it any more.
	RollupEndpoint RollupKind = "e"
	// RollupLatency counts the hooks' attempts by duration bin (see
	// LatencyBin) per hour of created.
	RollupLatency RollupKind = "l"
)

// Width is how much time one counter of the family covers.
func (k RollupKind) Width() time.Duration {
	if k == RollupMinute {
		return time.Minute
	}
	return time.Hour
}

// RollupKey names one counter.
type RollupKey struct {
	Kind   RollupKind
	Bucket time.Time // start of the minute or hour, UTC
	Status sendhooks.Status
	URL    string // RollupReceiver (ReceiverOf the hooks' URL) and RollupEndpoint only
	Bin    int    // RollupLatency only
}

// RollupRow is a counter and its value.
type RollupRow struct {
	RollupKey
	N int64
}

// maxRollupURL bounds the url a counter is kept under, so that a key fits
// every store's index (MongoDB's index keys hold about 1 KiB).
const maxRollupURL = 512

// ReceiverOf names the receiver a webhook URL is sent to: its scheme,
// host and port in lower case ("https://hooks.example.com:8443"), without
// the credentials, path, query and fragment, which often hold a token per
// webhook. Statistics count failures per receiver so that they read as
// many counters as there are receiver hosts, not webhooks. A URL without
// a scheme or a host gives "".
//
// The host is taken as written, by its delimiters alone, and nothing
// after it is read: earlier versions kept a URL's first 512 bytes, and a
// cut URL must name the same receiver as the whole one whenever its
// scheme, credentials and host fit in them (so that the counters moved
// from those versions and the hooks' own share agree). The result is at
// most maxRollupURL bytes, and ReceiverOf of a receiver is itself.
func ReceiverOf(rawURL string) string {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(rawURL), "://")
	if !ok || !validScheme(scheme) {
		return ""
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:] // the credentials
	}
	if rest == "" {
		return ""
	}
	return cut(strings.ToLower(scheme+"://"+rest), maxRollupURL)
}

// validScheme reports whether s is a URL scheme: a letter, then letters,
// digits, "+", "-" or "." (RFC 3986).
func validScheme(s string) bool {
	for i, c := range []byte(s) {
		letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// RollupDelta is a change to the counters: how much to add to each.
type RollupDelta map[RollupKey]int64

// Change adds the difference between the contributions of a hook before
// (nil for a new hook) and after (nil for a removed hook) a write.
func (d RollupDelta) Change(before, after *Hook) {
	d.add(before, -1)
	d.add(after, +1)
}

// add adds sign times h's contribution.
func (d RollupDelta) add(h *Hook, sign int64) {
	if h == nil || h.Created == nil {
		return
	}
	c := h.Created.UTC()
	hour := c.Truncate(time.Hour)
	d.inc(RollupKey{Kind: RollupMinute, Bucket: c.Truncate(time.Minute), Status: h.Status}, sign)
	d.inc(RollupKey{Kind: RollupHour, Bucket: hour, Status: h.Status}, sign)
	d.inc(RollupKey{Kind: RollupReceiver, Bucket: hour, Status: h.Status, URL: ReceiverOf(h.URL)}, sign)
	for _, a := range h.Attempts {
		d.inc(RollupKey{Kind: RollupLatency, Bucket: hour, Bin: LatencyBin(a.DurationMs)}, sign)
	}
}

func (d RollupDelta) inc(k RollupKey, n int64) {
	if v := d[k] + n; v != 0 {
		d[k] = v
	} else {
		delete(d, k)
	}
}

// Latency bins are geometric: bin i holds durations in
// (latencyBase·r^(i-1), latencyBase·r^i] with r = 2^(1/8), about 9% wide,
// and bin 0 everything up to latencyBase. Percentiles read from them are
// the bins' upper bounds, within 9% of the exact value.
const (
	latencyBase   = 0.1 // milliseconds
	binsPerDouble = 8
	maxLatencyBin = 200 // about 3.6e6 ms: an hour
)

// LatencyBin is the bin of a duration in milliseconds.
func LatencyBin(ms float64) int {
	if ms <= latencyBase || math.IsNaN(ms) {
		return 0
	}
	i := int(math.Ceil(binsPerDouble * math.Log2(ms/latencyBase)))
	// A duration on a bin's upper bound can land one bin high through
	// rounding; the bound itself belongs to the lower bin.
	if i > 0 && ms <= LatencyBinUpper(i-1) {
		i--
	}
	return min(i, maxLatencyBin)
}

// LatencyBinUpper is the upper bound of bin i in milliseconds, rounded to
// three significant digits.
func LatencyBinUpper(i int) float64 {
	v := latencyBase * math.Exp2(float64(i)/binsPerDouble)
	p := math.Pow(10, 2-math.Floor(math.Log10(v)))
	return math.Round(v*p) / p
}

// Segment is part of a created-time range, [From, To) in Unix
// milliseconds, and how to count the hooks in it.
type Segment struct {
	// Kind is RollupHour or RollupMinute to sum those counters, or "" to
	// count the hooks themselves through the created index.
	Kind     RollupKind
	From, To time.Time
}

// Far bounds of created times, for open ranges.
var (
	minCreated = time.UnixMilli(0).UTC()
	maxCreated = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// CountSegments splits the created range [from, to] (zero for open ends)
// so that a count reads whole hours from RollupHour counters, whole
// minutes at the ends from RollupMinute counters, and only the part of a
// minute at each end from the hooks themselves: the hooks read are those
// of at most two minutes, whatever the range.
func CountSegments(from, to time.Time) []Segment {
	a, b := minCreated, maxCreated
	if !from.IsZero() {
		a = from.UTC()
	}
	if !to.IsZero() {
		b = to.UTC().Truncate(time.Millisecond).Add(time.Millisecond) // inclusive end, at the precision stored
	}
	if !a.Before(b) {
		return nil
	}
	var out []Segment
	add := func(kind RollupKind, x, y time.Time) {
		if x.Before(y) {
			out = append(out, Segment{Kind: kind, From: x, To: y})
		}
	}
	ma, mb := ceil(a, time.Minute), b.Truncate(time.Minute)
	if !ma.Before(mb) {
		add("", a, b)
		return out
	}
	ha, hb := ceil(a, time.Hour), b.Truncate(time.Hour)
	add("", a, ma)
	if ha.Before(hb) {
		add(RollupMinute, ma, ha)
		add(RollupHour, ha, hb)
		add(RollupMinute, hb, mb)
	} else {
		add(RollupMinute, ma, mb)
	}
	add("", mb, b)
	return out
}

// ceil rounds t up to a multiple of d.
func ceil(t time.Time, d time.Duration) time.Time {
	if r := t.Truncate(d); r.Equal(t) {
		return r
	} else {
		return r.Add(d)
	}
}
