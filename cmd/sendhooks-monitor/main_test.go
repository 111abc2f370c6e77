package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/redistest"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/sqlite"
)

// runAsMonitor makes the test binary run the monitor's main, so the tests
// can start it as a process of its own and kill it.
const runAsMonitor = "SENDHOOKS_MONITOR_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsMonitor) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// monitorProc is the monitor running as a child process. done is closed
// when it has exited, with its exit error in err.
type monitorProc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	err  error
}

func startMonitor(t *testing.T, env []string) *monitorProc {
	t.Helper()
	p := &monitorProc{cmd: exec.Command(os.Args[0], "-test.run=^$"), out: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), append(env, runAsMonitor+"=1")...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("monitor output:\n%s", p.out)
		}
	})
	return p
}

// monitorEnv is the environment of a monitor on the Redis server, keeping
// its webhooks in an SQLite file of the test, and the base URL of its API.
func monitorEnv(t *testing.T, rs *redistest.Server) ([]string, string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(rs.Addr())
	api := strconv.Itoa(freePort(t))
	return []string{
		"BACKEND_PORT=" + api, "DASHBOARD_PORT=" + strconv.Itoa(freePort(t)), "SQLITE_PATH=" + filepath.Join(t.TempDir(), "monitor.db"),
		"REDIS_HOST=" + host, "REDIS_PORT=" + port, "CONSUMER_NAME=m1",
		"LOG_FORMAT=text", "LOG_LEVEL=warn", "ALLOWED_ORIGINS=", "SENDHOOKS_API_TOKEN=",
	}, "http://127.0.0.1:" + api
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func httpStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func httpBody(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestKillMidIngestAndRestart kills the monitor with SIGKILL while events
// flow in, starts it again, and checks that every job is stored once with
// exactly its events; then it stops the monitor with SIGTERM.
func TestKillMidIngestAndRestart(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	env, api := monitorEnv(t, rs)
	readyz := api + "/readyz"

	// count asks the monitor's API how many webhooks the query selects.
	count := func(query string) int64 {
		var page struct{ Meta struct{ TotalItems int64 } }
		if json.Unmarshal([]byte(httpBody(api+"/api/sendhooks/v1/hooks?limit=1&"+query)), &page) != nil {
			return -1
		}
		return page.Meta.TotalItems
	}
	const delivered = "status=success"

	first := startMonitor(t, env)
	eventually(t, 20*time.Second, "monitor ready", func() bool { return httpStatus(readyz) == http.StatusOK })

	// A producer writes two events (a failed attempt, then a delivery)
	// for each of n jobs while the monitor is killed and started again.
	const n = 150
	var wg sync.WaitGroup
	produced := make(chan error, 1)
	wg.Go(func() { produced <- produce(rdb, n) })
	eventually(t, 30*time.Second, "some hooks stored", func() bool { return count(delivered) >= 10 })
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done

	atKill := storedAfterKill(t, env)

	second := startMonitor(t, env)
	wg.Wait()
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "every job delivered in the store", func() bool { return count(delivered) == n })
	t.Logf("%d of %d jobs were stored when the monitor was killed", atKill, n)
	if atKill >= n {
		t.Fatalf("the kill came after all %d jobs were stored", n)
	}
	eventually(t, 10*time.Second, "every event acknowledged", func() bool {
		p, err := rdb.XPending(context.Background(), sendhooks.DefaultStatusStream, monitor.DefaultConsumerGroup).Result()
		return err == nil && p.Count == 0
	})
	if got := count(""); got != n {
		t.Fatalf("%d hooks, want %d", got, n)
	}
	var hooks []monitor.Hook
	for older := ""; ; {
		var page struct {
			Data []monitor.Hook
			Meta struct{ Older string }
		}
		if err := json.Unmarshal([]byte(httpBody(api+"/api/sendhooks/v1/hooks?limit=100&older="+older)), &page); err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, page.Data...)
		if older = page.Meta.Older; older == "" {
			break
		}
	}
	if len(hooks) != n {
		t.Fatalf("the pages hold %d hooks, want %d", len(hooks), n)
	}
	for _, h := range hooks {
		if len(h.Attempts) != 2 || h.Attempts[0].Number != 1 || h.Attempts[1].Number != 2 || h.NumberOfTries != 2 {
			t.Fatalf("hook %s has attempts %+v", h.ID, h.Attempts)
		}
	}

	metrics := api + "/metrics"
	eventually(t, 10*time.Second, "metrics show no lag", func() bool {
		body := httpBody(metrics)
		return strings.Contains(body, "\nsendhooks_monitor_lag_events 0\n") &&
			strings.Contains(body, "\nsendhooks_monitor_pending_events 0\n") &&
			strings.Contains(body, "\nsendhooks_monitor_event_parse_failures_total 0\n") &&
			strings.Contains(body, "\nsendhooks_monitor_events_ingested_total ")
	})

	// SIGTERM: a graceful stop, exit status 0.
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second.done:
		if second.err != nil {
			t.Fatalf("monitor exited with %v after SIGTERM, want status 0", second.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("monitor still running 15s after SIGTERM")
	}
}

// storedAfterKill opens the SQLite file of env, as the killed monitor left
// it, and counts the webhooks in it.
func storedAfterKill(t *testing.T, env []string) int64 {
	t.Helper()
	for _, kv := range env {
		if path, ok := strings.CutPrefix(kv, "SQLITE_PATH="); ok {
			s, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			p, err := s.List(context.Background(), monitor.ListQuery{Limit: 1})
			if err != nil {
				t.Fatalf("the file the killed monitor left: %v", err)
			}
			return p.Total
		}
	}
	t.Fatal("no SQLITE_PATH in the environment")
	return 0
}

// produce writes the events of n jobs to the status stream, as the engine
// would, a job at a time.
func produce(rdb *redis.Client, n int) error {
	ctx := context.Background()
	for i := range n {
		sid := fmt.Sprintf("1767348000%03d-0", i)
		for attempt, status := range []sendhooks.Status{sendhooks.StatusRetrying, sendhooks.StatusSuccess} {
			ev := sendhooks.StatusEvent{
				WebhookID: "wh-" + sid, Status: status, URL: "https://receiver.example/hook",
				StreamID: sid, Attempt: attempt + 1, NumberOfTries: attempt + 1,
			}
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: sendhooks.DefaultStatusStream, Values: []any{sendhooks.StreamField, string(b)}}).Err(); err != nil {
				return err
			}
		}
		time.Sleep(2 * time.Millisecond) // a steady flow, not one burst
	}
	return nil
}

func TestConfigErrorNamesTheVariable(t *testing.T) {
	p := startMonitor(t, []string{"BACKEND_PORT=lots"})
	<-p.done
	err := p.err
	want := "sendhooks-monitor: BACKEND_PORT must be a whole number from 1 to 65535, got \"lots\"\n"
	if err == nil || p.out.String() != want {
		t.Fatalf("exit %v, output %q; want status 1 and %q", err, p.out, want)
	}
}

// TestKillDuringRetention kills the monitor with SIGKILL while it removes
// expired webhooks and ingests new events, starts it again, and checks that
// every expired webhook is gone, every new one is stored with its events,
// and the counts and statistics agree with what is stored.
func TestKillDuringRetention(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	env, api := monitorEnv(t, rs)
	env = append(env, "RETENTION=24h")
	path := ""
	for _, kv := range env {
		if p, ok := strings.CutPrefix(kv, "SQLITE_PATH="); ok {
			path = p
		}
	}
	// 20,000 webhooks created two days ago, written as the monitor writes them.
	const expired = 20_000
	store, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	for start := 0; start < expired; start += 500 {
		var batch []monitor.Event
		for i := start; i < start+500; i++ {
			batch = append(batch, monitor.Event{StatusEvent: sendhooks.StatusEvent{
				StreamID: fmt.Sprintf("%d-%d", old.UnixMilli(), i), WebhookID: fmt.Sprintf("old-%d", i), URL: "http://127.0.0.1:9/old",
				Status: sendhooks.StatusSuccess, Attempt: 1, NumberOfTries: 1, Created: sendhooks.Time{Time: old.Add(time.Duration(i) * time.Millisecond)},
			}})
		}
		if err := store.Apply(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	store.Close(context.Background())

	count := func(query string) int64 {
		var page struct{ Meta struct{ TotalItems int64 } }
		if json.Unmarshal([]byte(httpBody(api+"/api/sendhooks/v1/hooks?limit=1&"+query)), &page) != nil {
			return -1
		}
		return page.Meta.TotalItems
	}
	first := startMonitor(t, env)
	const n = 100
	produced := make(chan error, 1)
	go func() { produced <- produce(rdb, n) }()
	eventually(t, 30*time.Second, "retention under way", func() bool {
		c := count("")
		return c > 0 && c < expired
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	if left := storedAfterKill(t, env); left <= n {
		t.Fatalf("the kill came after retention ended: %d webhooks left", left)
	}

	startMonitor(t, env)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "every expired webhook removed and every new one stored", func() bool {
		return count("") == n && count("status=success") == n
	})
	var stats struct {
		Total    int
		ByStatus map[string]int
	}
	if err := json.Unmarshal([]byte(httpBody(api+"/api/sendhooks/v1/stats?from="+old.Add(-time.Hour).UTC().Format(time.RFC3339)+"&bucket=24h")), &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Total != n || stats.ByStatus["success"] != n {
		t.Fatalf("statistics after the kill: %+v, want %d successes and nothing else", stats, n)
	}
	if status := httpStatus(api + "/api/sendhooks/v1/hooks/old-1"); status != http.StatusNotFound {
		t.Fatalf("an expired webhook answers %d, want 404", status)
	}
}
