package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/sendhooks/sendhooks/engine"
)

// smallEngineOptions sizes every engine measurement to run in seconds.
func smallEngineOptions(rounds int, progress io.Writer) EngineOptions {
	return EngineOptions{
		Jobs: 200, Rounds: rounds, Hosts: 50,
		LatencyRate: 200, LatencyDuration: 500 * time.Millisecond,
		Backlog: 2000, BacklogRun: 200 * time.Millisecond,
		IsolationJobs: 100, SlowDelay: 100 * time.Millisecond,
		Progress: progress,
	}
}

// TestEngineMeasuresEverything runs every engine measurement at a small
// size, with the engine on its defaults: each must come back complete, and
// the table must show each figure.
func TestEngineMeasuresEverything(t *testing.T) {
	var progress bytes.Buffer
	o := smallEngineOptions(2, &progress)
	res, err := Engine(context.Background(), o)
	if err != nil {
		t.Fatalf("Engine: %v\n%s", err, progress.String())
	}
	if !slices.Equal(res.Steps, EngineSteps()) {
		t.Errorf("steps made: %v, want every one of %v", res.Steps, EngineSteps())
	}
	if want := engine.Default().NumWorkers; res.Workers != want {
		t.Errorf("the engine ran with %d workers, want its default %d", res.Workers, want)
	}
	positive := func(name string, v []float64) {
		t.Helper()
		if len(v) != 2 || slices.Min(v) <= 0 {
			t.Errorf("%s: %v, want 2 rounds, each above 0", name, v)
		}
	}
	positive("one host, bare client", res.Bare)
	positive("one host, engine", res.Engine)
	positive("50 hosts, bare client", res.ManyBare)
	positive("50 hosts, engine", res.ManyEngine)
	positive("proxy, bare client", res.ProxyBare)
	positive("proxy, engine", res.ProxyEngine)
	if len(res.ExtraEntries) != 2 || slices.Min(res.ExtraEntries) < 0 {
		t.Errorf("extra jobs-stream entries per delivery: %v", res.ExtraEntries)
	}
	if res.EngineCPU <= 0 || res.RedisCPU <= 0 || res.AllocsPerDelivery <= 0 {
		t.Errorf("CPU per 1,000 deliveries: engine %v, redis %v; allocations per delivery %v",
			res.EngineCPU, res.RedisCPU, res.AllocsPerDelivery)
	}
	// 200 jobs over 50 hosts: 4 each in each of 2 bare-client and 2
	// engine runs.
	if res.Hosts != 50 || res.ManyLeast != 16 || res.ManyMost != 16 {
		t.Errorf("%d hosts had from %d to %d requests each, want 50 hosts with 16 each", res.Hosts, res.ManyLeast, res.ManyMost)
	}
	// The proxy carried every bare-client request (Engine checks that);
	// the engine's go through it all, or, when the engine does not take
	// HTTP_PROXY, none.
	if len(res.ProxyCarried) != 2 || res.ProxyJobs != 200 {
		t.Fatalf("proxy carried %v of %d", res.ProxyCarried, res.ProxyJobs)
	}
	for i, c := range res.ProxyCarried {
		if c != 0 && c != 200 {
			t.Errorf("proxy round %d: the proxy carried %d of the engine's 200 requests, want all or none", i+1, c)
		}
	}
	t.Logf("the proxy carried %v of the engine's requests in each round", res.ProxyCarried)
	if len(res.Latency) != 2 || res.LatencyJobs != 100 || res.LatencyRate != 200 {
		t.Fatalf("latency: %d runs of %d jobs at %d/s", len(res.Latency), res.LatencyJobs, res.LatencyRate)
	}
	for _, l := range append(res.Latency, res.MedianLatency()) {
		if l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max {
			t.Errorf("latency: %+v", l)
		}
	}
	if res.BacklogPeakRSS < 1<<20 || res.BacklogJobs != 2000 {
		t.Errorf("peak RSS with %d jobs queued: %d bytes", res.BacklogJobs, res.BacklogPeakRSS)
	}
	if len(res.IsolationAlone) != 2 || len(res.IsolationWithSlow) != 2 || slices.Min(res.IsolationAlone) <= 0 || slices.Min(res.IsolationWithSlow) <= 0 {
		t.Errorf("isolation: alone %v/s, beside the slow receiver %v/s", res.IsolationAlone, res.IsolationWithSlow)
	}

	var table bytes.Buffer
	if err := (Report{Engine: &res}).Write(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"engine configuration", "SENDHOOKS_ALLOW_PRIVATE_NETWORKS (receivers on loopback)",
		"one host: bare Go client", "one host: engine / bare client", "extra jobs-stream entries per delivered job",
		"CPU per 1,000 deliveries, engine process", "heap allocations per delivery", "50 hosts: engine / bare client",
		"proxy: engine / bare client", "proxy: engine requests the proxy carried",
		"latency XADD to receiver at 200 jobs/s, 100 jobs", "engine peak RSS, 2000 jobs queued", "costs the fast one"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table has no %q row:\n%s", want, table.String())
		}
	}
	t.Logf("\n%s", table.String())
}

// TestEngineMakesTheStepsAsked runs two of the engine's measurements:
// only they are made, and the table shows their rows and no others.
func TestEngineMakesTheStepsAsked(t *testing.T) {
	var progress bytes.Buffer
	o := smallEngineOptions(1, &progress)
	o.Steps = []string{"isolation", "latency"}
	res, err := Engine(context.Background(), o)
	if err != nil {
		t.Fatalf("Engine: %v\n%s", err, progress.String())
	}
	if want := []string{"latency", "isolation"}; !slices.Equal(res.Steps, want) {
		t.Errorf("steps made: %v, want %v (in the order of EngineSteps)", res.Steps, want)
	}
	if len(res.Bare) != 0 || len(res.ManyBare) != 0 || len(res.ProxyBare) != 0 || res.BacklogJobs != 0 {
		t.Errorf("measured what was not asked: one host %v, hosts %v, proxy %v, backlog %d", res.Bare, res.ManyBare, res.ProxyBare, res.BacklogJobs)
	}
	if len(res.Latency) != 1 || len(res.IsolationAlone) != 1 || len(res.IsolationWithSlow) != 1 {
		t.Errorf("latency %d runs, isolation %d and %d runs; want 1 each", len(res.Latency), len(res.IsolationAlone), len(res.IsolationWithSlow))
	}
	var table bytes.Buffer
	if err := (Report{Engine: &res}).Write(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"engine configuration", "latency XADD to receiver at 200 jobs/s", "costs the fast one"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table has no %q row:\n%s", want, table.String())
		}
	}
	for _, unwanted := range []string{"one host", "50 hosts", "proxy", "peak RSS"} {
		if strings.Contains(table.String(), unwanted) {
			t.Errorf("the table has a %q row, which was not measured:\n%s", unwanted, table.String())
		}
	}
}

func TestParseEngineSteps(t *testing.T) {
	for list, want := range map[string][]string{
		"":                     nil,
		" ":                    nil,
		"isolation":            {"isolation"},
		"one-host, isolation":  {"one-host", "isolation"},
		"memory,latency,proxy": {"memory", "latency", "proxy"},
	} {
		got, err := ParseEngineSteps(list)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseEngineSteps(%q) = %v, %v; want %v", list, got, err, want)
		}
	}
	for list, want := range map[string]string{
		"throughput":   `no engine measurement is called "throughput": want some of one-host, hosts, proxy, latency, memory, isolation`,
		"isolation,,":  `no engine measurement is called ""`,
		"one-host;all": `"one-host;all"`,
	} {
		if _, err := ParseEngineSteps(list); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseEngineSteps(%q) = %v; want an error containing %q", list, err, want)
		}
	}
	for _, o := range []struct {
		opts EngineOptions
		want string
	}{
		{EngineOptions{Steps: []string{"isolation", "speed"}}, `no engine measurement is called "speed"`},
		{EngineOptions{Steps: []string{"one-host,hosts"}}, `no engine measurement is called "one-host,hosts"`},
		{EngineOptions{Steps: []string{"isolation"}, CPUProfile: "engine.prof"}, `a CPU profile is of the "one-host" step`},
	} {
		if _, err := Engine(context.Background(), o.opts); err == nil || !strings.Contains(err.Error(), o.want) {
			t.Errorf("Engine with steps %q, profile %q: %v; want an error containing %q", o.opts.Steps, o.opts.CPUProfile, err, o.want)
		}
	}
}

// TestEngineRunsOnDefaults checks that the engine child gets exactly the
// configuration of a user who writes no config file, but for the settings
// the benchmark names (benchSettings), whatever the environment the
// benchmark was started in says.
func TestEngineRunsOnDefaults(t *testing.T) {
	t.Setenv("SENDHOOKS_NUM_WORKERS", "3")
	t.Setenv("SENDHOOKS_MAX_PER_HOST", "2")
	t.Setenv("SENDHOOKS_REDIS_STREAM_NAME", "elsewhere")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("https_proxy", "http://127.0.0.1:1")
	t.Setenv("NO_PROXY", "*")

	got, err := engineConfig(engineSetup{redis: "127.0.0.1:7777"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := engine.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want.Redis.Address, want.AllowPrivateNetworks, want.MetricsAddress = "127.0.0.1:7777", true, "127.0.0.1:0"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the engine child's configuration:\n%+v\nwant the defaults with the benchmark's settings:\n%+v", got, want)
	}

	// Every setting the benchmark gives is one it names with a reason, and
	// HTTP_PROXY only when the run has a proxy.
	for _, proxy := range []string{"", "http://127.0.0.1:9"} {
		var given []string
		for _, kv := range engineEnv(engineSetup{redis: "127.0.0.1:7777", proxy: proxy}, "127.0.0.1:0") {
			k, v, _ := strings.Cut(kv, "=")
			switch {
			case strings.HasPrefix(k, "SENDHOOKS_") && k != ChildEnv:
				given = append(given, k)
			case strings.EqualFold(k, "HTTP_PROXY") && v == proxy:
			case slices.Contains([]string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}, strings.ToUpper(k)):
				t.Errorf("proxy %q: the engine child gets %s", proxy, kv)
			}
		}
		var named []string
		for _, s := range benchSettings {
			named = append(named, s.name)
		}
		if slices.Sort(given); !slices.Equal(given, slices.Sorted(slices.Values(named))) {
			t.Errorf("the engine child is given %v, the benchmark names %v", given, named)
		}
	}
}

// TestProxyCarriesBothForms sends one request through the benchmark's
// proxy in absolute form and one through a CONNECT tunnel, to the name the
// proxy rows use, and checks that the receiver counts both as carried by
// the proxy and the direct one as not; and that Go's proxy selection from
// the environment, which exempts loopback, does proxy that name.
func TestProxyCarriesBothForms(t *testing.T) {
	rc, err := startReceiver("127.0.0.1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.close()
	proxy, err := startProxy(4)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.close()
	target := "http://" + net.JoinHostPort(proxiedHost, rc.port) + "/hook"
	proxyURL, _ := url.Parse(proxy.url)

	fromEnv := (&httpproxy.Config{HTTPProxy: proxy.url}).ProxyFunc()
	for raw, want := range map[string]string{target: proxy.url, rc.url: "", "http://localhost:" + rc.port + "/hook": ""} {
		u, _ := url.Parse(raw)
		got, err := fromEnv(u)
		if err != nil || (got == nil) != (want == "") || (got != nil && got.String() != want) {
			t.Errorf("HTTP_PROXY=%s: the proxy for %s is %v (%v), want %q", proxy.url, raw, got, err, want)
		}
	}

	post := func(client *http.Client) {
		t.Helper()
		resp, err := client.Post(target, "application/json", strings.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %s", target, resp.Status)
		}
	}
	post(&http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}) // absolute form
	post(&http.Client{Transport: &http.Transport{}})                               // direct

	// A CONNECT tunnel, as a client that tunnels plain http too would use.
	conn, err := net.Dial("tcp", proxyURL.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authority := net.JoinHostPort(proxiedHost, rc.port)
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT %s: %v %v", authority, resp, err)
	}
	fmt.Fprintf(conn, "POST /hook HTTP/1.1\r\nHost: %s\r\nContent-Length: 2\r\n\r\n{}", authority)
	if resp, err = http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST through the tunnel: %v %v", resp, err)
	}

	if got, proxied := rc.requests.Load(), rc.proxied.Load(); got != 3 || proxied != 2 {
		t.Errorf("the receiver had %d requests, %d of them through the proxy; want 3, 2", got, proxied)
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
