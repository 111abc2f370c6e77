package stats

import (
	"testing"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

func TestNiceCeil(t *testing.T) {
	for n, want := range map[int]int{0: 2, 1: 2, 2: 2, 3: 10, 9: 10, 10: 10, 11: 20, 21: 50, 50: 50, 51: 100, 999: 1000} {
		if got := niceCeil(n); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestDeliveriesStacksBars(t *testing.T) {
	from := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	d := Data{Range: Ranges[0], Stats: monitor.Stats{Buckets: []monitor.Bucket{
		{Start: from, Counts: map[sendhooks.Status]int{sendhooks.StatusSuccess: 6, sendhooks.StatusFailed: 2}},
		{Start: from.Add(time.Hour), Counts: map[sendhooks.Status]int{}},
		{Start: from.Add(2 * time.Hour), Counts: map[sendhooks.Status]int{sendhooks.StatusRetrying: 1}},
	}}}
	c := d.deliveries()
	if len(c.Columns) != 3 || len(c.Columns[0].Rects) != 2 || len(c.Columns[1].Rects) != 0 || len(c.Columns[2].Rects) != 1 {
		t.Fatalf("columns %+v", c.Columns)
	}
	success, failed := c.Columns[0].Rects[0], c.Columns[0].Rects[1]
	if success.Class != "bar-success" || failed.Class != "bar-failed" || success.H != 3*failed.H {
		t.Errorf("stack %+v %+v: want success three times as tall as failed", success, failed)
	}
	if bottom := success.Y + success.H; bottom != plotTop+plotHeight || failed.Y+failed.H != success.Y {
		t.Errorf("bars do not stack from the axis: %+v %+v", success, failed)
	}
	// The axis tops at 10 for a peak of 8: 8 hooks fill 80% of the plot.
	if got, want := success.H+failed.H, 0.8*plotHeight; got != want {
		t.Errorf("stack height %v, want %v", got, want)
	}
	if c.Columns[0].Title != "00:00–01:00 UTC: 6 success, 2 failed, 0 retrying" {
		t.Errorf("title %q", c.Columns[0].Title)
	}
}

func TestBarsScaleToTheLargest(t *testing.T) {
	bars := hbars([]string{"a", "b", "c"}, []string{"1", "4", "0"}, []float64{1, 4, 0}, "bar-failed")
	if bars[0].Share != 25 || bars[1].Share != 100 || bars[2].Share != 0 {
		t.Errorf("shares %v %v %v, want 25 100 0", bars[0].Share, bars[1].Share, bars[2].Share)
	}
}
