package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Report is the benchmark's table: one row per figure, with its target
// where the project sets one.
type Report struct {
	Engine  *EngineResult  // nil when the engine was not measured
	Monitor *MonitorResult // nil when the monitor was not measured
}

// row is one line of the table.
type row struct {
	measure, result, target string
	met                     *bool // nil: no target
}

// Targets of the project on a 2-core machine (docs/benchmarks.md).
const (
	targetShare     = 0.6
	targetP99       = 25 * time.Millisecond
	targetRSS       = 100 << 20
	targetIsolation = 0.10
)

func (r Report) rows() []row {
	var rows []row
	if e := r.Engine; e != nil {
		rows = append(rows,
			row{measure: "bare Go client, requests/s (ceiling)", result: rates(e.Bare)},
			row{measure: "engine, deliveries/s with status events", result: rates(e.Engine)},
			check("engine / bare client", fmt.Sprintf("%.2f", e.Share()), fmt.Sprintf(">= %.1f", targetShare), e.Share() >= targetShare),
			row{measure: "CPU per 1,000 deliveries: engine process", result: ms(e.EngineCPU)},
			row{measure: "CPU per 1,000 deliveries: redis-server", result: ms(e.RedisCPU)},
			row{measure: "heap allocations per delivery (engine process)", result: fmt.Sprintf("%.0f", e.AllocsPerDelivery)},
			check(fmt.Sprintf("latency XADD to receiver, %d jobs: p50 / p95 / p99 / max", e.LatencyJobs),
				fmt.Sprintf("%s / %s / %s / %s", ms(e.Latency.P50), ms(e.Latency.P95), ms(e.Latency.P99), ms(e.Latency.Max)),
				"p99 < "+ms(targetP99), e.Latency.P99 < targetP99),
			check(fmt.Sprintf("engine peak RSS, backlog queued (%d delivered meanwhile)", e.BacklogDelivered),
				mib(e.BacklogPeakRSS), "< "+mib(targetRSS), e.BacklogPeakRSS < targetRSS),
			row{measure: "fast receiver alone, deliveries/s", result: rates(e.IsolationAlone)},
			row{measure: "fast receiver beside a slow one, deliveries/s", result: rates(e.IsolationWithSlow)},
			check("throughput the slow receiver costs the others", fmt.Sprintf("%.1f%%", 100*e.IsolationCost()),
				fmt.Sprintf("< %.0f%%", 100*targetIsolation), e.IsolationCost() < targetIsolation),
		)
	}
	if r.Monitor != nil {
		rows = append(rows, r.Monitor.rows()...)
	}
	return rows
}

func check(measure, result, target string, met bool) row {
	return row{measure: measure, result: result, target: target, met: &met}
}

// Write prints the table as Markdown, its columns aligned, ready for
// docs/benchmarks.md.
func (r Report) Write(w io.Writer) error {
	cells := [][3]string{{"measure", "result", "target"}}
	for _, r := range r.rows() {
		target := r.target
		if r.met != nil {
			target += map[bool]string{true: " (met)", false: " (MISSED)"}[*r.met]
		}
		cells = append(cells, [3]string{r.measure, r.result, target})
	}
	var width [3]int
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], len(s))
		}
	}
	var b strings.Builder
	line := func(c [3]string) {
		for i, s := range c {
			fmt.Fprintf(&b, "| %-*s ", width[i], s)
		}
		b.WriteString("|\n")
	}
	line(cells[0])
	line([3]string{strings.Repeat("-", width[0]), strings.Repeat("-", width[1]), strings.Repeat("-", width[2])})
	for _, c := range cells[1:] {
		line(c)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// rates shows the median of runs and their range.
func rates(v []float64) string {
	if len(v) == 1 {
		return fmt.Sprintf("%.0f", v[0])
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf("%.0f (%.0f to %.0f, %d runs)", median(v), lo, hi, len(v))
}

func ms(d time.Duration) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)), "0"), ".") + " ms"
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Machine describes where the figures come from: CPU model and count,
// memory, Go and redis-server versions.
func Machine() string {
	model, memory := "unknown CPU", "unknown memory"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(raw), "MemTotal: %d kB", &kb); err == nil {
			memory = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
		}
	}
	redisVersion := "unknown"
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				redisVersion = v
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs, %s, %s, %s/%s, Redis %s",
		model, runtime.NumCPU(), memory, runtime.Version(), runtime.GOOS, runtime.GOARCH, redisVersion)
}
