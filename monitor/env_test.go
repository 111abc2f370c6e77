package monitor_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/internal/redistest"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/sqlite"
)

const (
	testStream = "hooks-status"
	testGroup  = "sendhooks-monitor"
)

// testEnv is a real Redis and a store on a real SQLite file.
type testEnv struct {
	redis *redistest.Server
	rdb   *redis.Client
	store monitor.Store
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	e := &testEnv{redis: redistest.Start(t)}
	e.rdb = e.redis.Client(t)
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "monitor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	if err := store.Setup(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	e.store = store
	return e
}

// startIngester runs an ingester as consumer until the test ends and
// returns its metrics registry.
func (e *testEnv) startIngester(t *testing.T, consumer string, tune func(*monitor.Ingester)) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	in := monitor.NewIngester(e.rdb, e.store, monitor.NewMetrics(reg), slog.New(slog.NewTextHandler(io.Discard, nil)), testStream, testGroup, consumer)
	in.Block, in.Backoff, in.MaxBackoff = 100*time.Millisecond, 20*time.Millisecond, 200*time.Millisecond
	in.WriteTimeout = 3 * time.Second
	if tune != nil {
		tune(in)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = in.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return reg
}

// add writes raw as the data of a status-stream entry.
func (e *testEnv) add(t *testing.T, raw string) string {
	t.Helper()
	id, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: testStream, Values: []any{sendhooks.StreamField, raw}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// addEvents writes the events, as the engine would.
func (e *testEnv) addEvents(t *testing.T, evs ...monitor.Event) {
	t.Helper()
	for _, ev := range evs {
		b, err := json.Marshal(ev.StatusEvent)
		if err != nil {
			t.Fatal(err)
		}
		e.add(t, string(b))
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hooks returns every stored hook by id.
func (e *testEnv) hooks(t *testing.T) map[string]monitor.Hook {
	t.Helper()
	hs, _, err := monitor.Collect(context.Background(), e.store, monitor.Filter{}, 10_000)
	if err != nil {
		return nil
	}
	m := make(map[string]monitor.Hook, len(hs))
	for _, h := range hs {
		m[h.ID] = h
	}
	return m
}

// pending is the number of events read by the group and not acknowledged.
func (e *testEnv) pending(t *testing.T) int64 {
	t.Helper()
	p, err := e.rdb.XPending(context.Background(), testStream, testGroup).Result()
	if err != nil {
		t.Fatal(err)
	}
	return p.Count
}

// counter reads a counter of reg by name.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && strings.HasSuffix(name, "_total") {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
