package bench

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEngineMeasuresEverything runs every engine measurement at a small
// size: each must come back complete, and the table must show each figure.
func TestEngineMeasuresEverything(t *testing.T) {
	var progress bytes.Buffer
	o := EngineOptions{
		Jobs: 500, Rounds: 2, Workers: 8,
		LatencyRate: 200, LatencyDuration: 500 * time.Millisecond,
		Backlog: 2000, BacklogRun: 200 * time.Millisecond,
		IsolationJobs: 200, SlowDelay: 100 * time.Millisecond,
		Progress: &progress,
	}
	res, err := Engine(context.Background(), o)
	if err != nil {
		t.Fatalf("Engine: %v\n%s", err, progress.String())
	}
	if len(res.Bare) != 2 || len(res.Engine) != 2 {
		t.Fatalf("%d bare and %d engine runs, want 2 each", len(res.Bare), len(res.Engine))
	}
	for i := range 2 {
		if res.Bare[i] <= 0 || res.Engine[i] <= 0 {
			t.Errorf("round %d: bare %v/s, engine %v/s", i+1, res.Bare[i], res.Engine[i])
		}
	}
	if res.EngineCPU <= 0 || res.RedisCPU <= 0 || res.AllocsPerDelivery <= 0 {
		t.Errorf("CPU per 1,000 deliveries: engine %v, redis %v; allocations per delivery %v",
			res.EngineCPU, res.RedisCPU, res.AllocsPerDelivery)
	}
	if res.LatencyJobs != 100 || res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("latency over %d jobs: %+v", res.LatencyJobs, res.Latency)
	}
	if res.BacklogPeakRSS < 1<<20 {
		t.Errorf("peak RSS with the backlog: %d bytes", res.BacklogPeakRSS)
	}
	if len(res.IsolationAlone) != 2 || len(res.IsolationWithSlow) != 2 || slices.Min(res.IsolationAlone) <= 0 || slices.Min(res.IsolationWithSlow) <= 0 {
		t.Errorf("isolation: alone %v/s, beside the slow receiver %v/s", res.IsolationAlone, res.IsolationWithSlow)
	}

	var table bytes.Buffer
	if err := (Report{Engine: &res}).Write(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bare Go client", "engine / bare client", "CPU per 1,000 deliveries: engine process",
		"heap allocations per delivery", "latency XADD to receiver, 100 jobs", "engine peak RSS", "costs the others"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table has no %q row:\n%s", want, table.String())
		}
	}
}

func TestPercentilesByNearestRank(t *testing.T) {
	d := make([]time.Duration, 0, 100)
	for i := 100; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	want := Percentiles{P50: 50 * time.Millisecond, P95: 95 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got := percentiles(d); got != want {
		t.Errorf("percentiles of 1..100 ms: %+v, want %+v", got, want)
	}
	if got := percentiles([]time.Duration{7}); got != (Percentiles{7, 7, 7, 7}) {
		t.Errorf("percentiles of one value: %+v", got)
	}
}
