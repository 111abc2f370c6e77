package stats

import (
	"cmp"
	"fmt"
	"math"
	"strconv"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/templates/layout"
)

// Geometry of the charts, in SVG user units (the SVGs scale to their box).
const (
	chartWidth  = 900
	chartHeight = 240
	plotLeft    = 56
	plotRight   = 8
	plotTop     = 10
	plotBottom  = 28
	maxXLabels  = 6
)

// rect is one bar.
type rect struct {
	X, Y, W, H float64
	Class      string
}

// label is a text placed on a chart.
type label struct {
	X, Y   float64
	Text   string
	Anchor string
}

// column is the stacked bar of one bucket.
type column struct {
	Title string // its values, for a tooltip
	Rects []rect
}

// timeChart is the deliveries-per-bucket chart.
type timeChart struct {
	Columns []column
	YLabels []label
	XLabels []label
	Grid    []float64 // y of the grid lines
}

// plotHeight is the height of the bars' area.
const plotHeight = chartHeight - plotTop - plotBottom

// deliveries lays out the stacked bars of the buckets.
func (d Data) deliveries() timeChart {
	var c timeChart
	buckets := d.Stats.Buckets
	if len(buckets) == 0 {
		return c
	}
	peak := 0
	for _, b := range buckets {
		peak = max(peak, total(b.Counts))
	}
	top := niceCeil(peak)
	scale := float64(plotHeight) / float64(top)
	slot := float64(chartWidth-plotLeft-plotRight) / float64(len(buckets))
	gap := math.Min(slot*0.2, 4)
	for i, b := range buckets {
		x := plotLeft + float64(i)*slot + gap/2
		y := float64(plotTop + plotHeight)
		col := column{Title: fmt.Sprintf("%s: %d success, %d failed, %d retrying", d.bucketRange(b),
			b.Counts[sendhooks.StatusSuccess], b.Counts[sendhooks.StatusFailed], b.Counts[sendhooks.StatusRetrying])}
		for _, s := range outcomes {
			h := float64(b.Counts[s]) * scale
			if h == 0 {
				continue
			}
			y -= h
			col.Rects = append(col.Rects, rect{X: x, Y: y, W: slot - gap, H: h, Class: "bar-" + string(s)})
		}
		c.Columns = append(c.Columns, col)
	}
	for _, v := range []int{0, top / 2, top} {
		y := float64(plotTop+plotHeight) - float64(v)*scale
		c.Grid = append(c.Grid, y)
		c.YLabels = append(c.YLabels, label{X: plotLeft - 6, Y: y + 4, Text: strconv.Itoa(v), Anchor: "end"})
	}
	every := max(1, (len(buckets)+maxXLabels-1)/maxXLabels)
	for i := 0; i < len(buckets); i += every {
		c.XLabels = append(c.XLabels, label{
			X: plotLeft + (float64(i)+0.5)*slot, Y: chartHeight - 8,
			Text: d.bucketLabel(buckets[i].Start), Anchor: "middle",
		})
	}
	return c
}

// total is the number of hooks of a bucket.
func total(counts map[sendhooks.Status]int) int {
	n := 0
	for _, v := range counts {
		n += v
	}
	return n
}

// niceCeil is the smallest of 1, 2, 5 × 10^k at or above n (at least 2),
// so the axis reads in round numbers and halves evenly.
func niceCeil(n int) int {
	if n <= 2 {
		return 2
	}
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*p >= n && (m*p)%2 == 0 {
				return m * p
			}
		}
	}
}

// hbar is one row of a horizontal bar chart: its label and value are
// text, its bar an SVG of the value's share.
type hbar struct {
	Label string  // the row's name
	Value string  // the row's value as text
	Share float64 // the bar's length, 0 to 100
	Class string
}

// hbars lays out rows whose values are scaled to the largest.
func hbars(labels, values []string, amounts []float64, class string) []hbar {
	full := 0.0
	for _, a := range amounts {
		full = math.Max(full, a)
	}
	out := make([]hbar, len(labels))
	for i := range labels {
		share := 0.0
		if amounts[i] > 0 {
			share = math.Max(amounts[i]/full*100, 0.5) // a sliver stays visible
		}
		out[i] = hbar{Label: labels[i], Value: values[i], Share: share, Class: class}
	}
	return out
}

// latencyBars are the percentiles of attempt durations.
func (d Data) latencyBars() []hbar {
	l := d.Stats.Latency
	ms := []float64{l.P50, l.P95, l.P99}
	return hbars([]string{"p50", "p95", "p99"},
		[]string{layout.Millis(l.P50), layout.Millis(l.P95), layout.Millis(l.P99)}, ms, "bar-neutral")
}

// endpointBars are the endpoints failing most, by failed hooks.
func (d Data) endpointBars() []hbar {
	eps := d.Stats.FailingEndpoints
	labels, values, amounts := make([]string, len(eps)), make([]string, len(eps)), make([]float64, len(eps))
	for i, e := range eps {
		labels[i] = cmp.Or(layout.Excerpt(e.URL, 90), "(URL without a host)")
		values[i] = fmt.Sprintf("%d of %d", e.Failed, e.Total)
		amounts[i] = float64(e.Failed)
	}
	return hbars(labels, values, amounts, "bar-failed")
}

// rateBar is the success rate as a bar.
func (d Data) rateBar() []hbar {
	share := 0.0
	if d.Stats.SuccessRate != nil {
		share = *d.Stats.SuccessRate * 100
	}
	return []hbar{{Label: "succeeded", Value: d.successRate(), Share: share, Class: "bar-success"}}
}

// num formats an SVG coordinate.
func num(f float64) string {
	return strconv.FormatFloat(f, 'f', 1, 64)
}
