package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
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

// Targets of the project on a 2-core machine, with the engine on its
// defaults (docs/benchmarks.md).
const (
	targetShare     = 0.7
	moonshotShare   = 0.8
	targetP99       = 5 * time.Millisecond
	targetRSS       = 100 << 20
	targetIsolation = 0.10
)

func (r Report) rows() []row {
	var rows []row
	if e := r.Engine; e != nil {
		rows = append(rows, e.rows()...)
	}
	if r.Monitor != nil {
		rows = append(rows, r.Monitor.rows()...)
	}
	return rows
}

func (e *EngineResult) rows() []row {
	rows := []row{{measure: "engine configuration", result: e.configuration()}}
	for _, step := range engineSteps {
		if slices.Contains(e.Steps, step.name) {
			rows = append(rows, step.rows(e)...)
		}
	}
	return rows
}

func (e *EngineResult) oneHostRows() []row {
	extra := median(e.ExtraEntries)
	return []row{
		{measure: "one host: bare Go client, requests/s (ceiling)", result: rates(e.Bare)},
		{measure: "one host: engine, deliveries/s with status events", result: rates(e.Engine)},
		check("one host: engine / bare client", fmt.Sprintf("%.2f", e.Share()),
			fmt.Sprintf(">= %.1f (moonshot %.1f)", targetShare, moonshotShare), e.Share() >= targetShare),
		check("one host: extra jobs-stream entries per delivered job", fmt.Sprintf("%.3f (%s)", extra, values(e.ExtraEntries, "%.3f")),
			"0", extra == 0),
		{measure: "one host: CPU per 1,000 deliveries, engine process", result: ms(e.EngineCPU)},
		{measure: "one host: CPU per 1,000 deliveries, redis-server", result: ms(e.RedisCPU)},
		{measure: "one host: heap allocations per delivery (engine process)", result: fmt.Sprintf("%.0f", e.AllocsPerDelivery)},
	}
}

func (e *EngineResult) hostsRows() []row {
	return []row{
		{measure: fmt.Sprintf("%d hosts: bare Go client, requests/s (ceiling)", e.Hosts), result: rates(e.ManyBare)},
		{measure: fmt.Sprintf("%d hosts: engine, deliveries/s with status events", e.Hosts), result: rates(e.ManyEngine)},
		check(fmt.Sprintf("%d hosts: engine / bare client", e.Hosts), fmt.Sprintf("%.2f", e.ManyShare()),
			fmt.Sprintf(">= %.1f", targetShare), e.ManyShare() >= targetShare),
	}
}

func (e *EngineResult) proxyRows() []row {
	return []row{
		{measure: "proxy: bare Go client through it, requests/s", result: rates(e.ProxyBare)},
		{measure: "proxy: engine with HTTP_PROXY, deliveries/s", result: rates(e.ProxyEngine)},
		{measure: "proxy: engine / bare client", result: e.proxyShare()},
		e.proxyCarried(),
	}
}

func (e *EngineResult) latencyRows() []row {
	lat := e.MedianLatency()
	return []row{check(fmt.Sprintf("latency XADD to receiver at %d jobs/s, %d jobs: p50 / p95 / p99 / max", e.LatencyRate, e.LatencyJobs),
		fmt.Sprintf("%s / %s / %s / %s (p99 %s)", ms(lat.P50), ms(lat.P95), ms(lat.P99), ms(lat.Max), e.latencyP99s()),
		"p99 < "+ms(targetP99), lat.P99 < targetP99)}
}

func (e *EngineResult) memoryRows() []row {
	return []row{check(fmt.Sprintf("engine peak RSS, %d jobs queued (%d delivered meanwhile)", e.BacklogJobs, e.BacklogDelivered),
		mib(e.BacklogPeakRSS), "< "+mib(targetRSS), e.BacklogPeakRSS < targetRSS)}
}

func (e *EngineResult) isolationRows() []row {
	return []row{
		{measure: "fast receiver alone, deliveries/s", result: rates(e.IsolationAlone)},
		{measure: "fast receiver beside a slow one, deliveries/s", result: rates(e.IsolationWithSlow)},
		{measure: "engine + redis-server CPU per fast delivery: alone / beside the slow one", result: fmt.Sprintf("%s / %s", us(e.IsolationCPUAlone), us(e.IsolationCPUWithSlow))},
		check("throughput the slow receiver costs the fast one", fmt.Sprintf("%.1f%%", 100*e.IsolationCost()),
			fmt.Sprintf("< %.0f%%", 100*targetIsolation), e.IsolationCost() < targetIsolation),
	}
}

// configuration says what the engine ran with: its defaults, and the
// settings the benchmark gives it, with why.
func (e *EngineResult) configuration() string {
	var set []string
	for _, s := range benchSettings {
		set = append(set, s.name+" ("+s.why+")")
	}
	return fmt.Sprintf("defaults: %d workers, per-host cap %s; set: %s",
		e.Workers, perHostCap(e.MaxPerHost), strings.Join(set, ", "))
}

// proxyCarried is the row that says whether the proxy rows measured the
// proxy at all.
func (e *EngineResult) proxyCarried() row {
	var carried, want int64
	for _, c := range e.ProxyCarried {
		carried += c
	}
	want = int64(e.ProxyJobs) * int64(len(e.ProxyCarried))
	result := fmt.Sprintf("%d of %d", carried, want)
	if carried == 0 {
		result += ": the proxy carried 0 requests, the engine went direct (it did not take HTTP_PROXY)"
	}
	return check("proxy: engine requests the proxy carried", result, "all", carried == want)
}

// proxyShare is the proxy rows' ratio, which compares nothing when the
// engine did not go through the proxy.
func (e *EngineResult) proxyShare() string {
	share := fmt.Sprintf("%.2f", e.ProxyShare())
	for _, c := range e.ProxyCarried {
		if c != int64(e.ProxyJobs) {
			return share + " (not a proxy figure: the engine went direct, see below)"
		}
	}
	return share
}

func (e *EngineResult) latencyP99s() string {
	v := make([]float64, len(e.Latency))
	for i, p := range e.Latency {
		v[i] = float64(p.P99) / float64(time.Millisecond)
	}
	return values(v, "%.2f") + " ms"
}

func perHostCap(n int) string {
	if n == 0 {
		return "none"
	}
	return strconv.Itoa(n)
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

// values lists each run's figure.
func values(v []float64, format string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, ", ")
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

// us prints a duration in whole microseconds.
func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }
