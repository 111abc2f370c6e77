package perf

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/sqlite"
)

func TestPerf(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlite.Open(filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 300000
	base := time.Now().Add(-7 * 24 * time.Hour)
	start := time.Now()
	for b := 0; b < n; b += 256 {
		var evs []monitor.Event
		for i := b; i < b+256 && i < n; i++ {
			created := base.Add(time.Duration(i) * 7 * 24 * time.Hour / time.Duration(n))
			st := sendhooks.StatusSuccess
			if i%10 == 0 {
				st = sendhooks.StatusFailed
			}
			evs = append(evs, monitor.Event{StatusEvent: sendhooks.StatusEvent{
				StreamID: fmt.Sprintf("%d-0", created.UnixMilli()*10+int64(i%10)), WebhookID: fmt.Sprintf("order-%d", i), MessageID: fmt.Sprintf("msg-%d", i),
				URL: fmt.Sprintf("https://receiver-%d.example.com/hooks/in", i%50), Status: st, Attempt: 1, NumberOfTries: 1, DurationMs: float64(i % 300),
				Created: sendhooks.Time{Time: created}, Delivered: sendhooks.Time{Time: created.Add(time.Second)},
				Job: fmt.Sprintf(`{"url":"https://receiver-%d.example.com/hooks/in","webhookId":"order-%d","data":{"order":%d,"items":[1,2,3],"note":"some payload text here"}}`, i%50, i, i),
			}})
		}
		if err := s.Apply(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if (b/256)%200 == 0 {
			fmt.Fprintf(os.Stderr, "%d %v %.0f/s\n", b, time.Since(start), float64(b)/time.Since(start).Seconds())
		}
	}
	fmt.Fprintf(os.Stderr, "ingest %d in %v: %.0f/s\n", n, time.Since(start), float64(n)/time.Since(start).Seconds())
	tm := func(name string, f func() error) {
		var ds []time.Duration
		for range 5 {
			t0 := time.Now()
			if err := f(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ds = append(ds, time.Since(t0))
		}
		fmt.Fprintf(os.Stderr, "%-30s %v\n", name, ds)
	}
	l := func(q monitor.ListQuery) func() error {
		return func() error { _, err := s.List(ctx, q); return err }
	}
	tm("list", l(monitor.ListQuery{Limit: 20}))
	tm("list failed", l(monitor.ListQuery{Limit: 20, Filter: monitor.Filter{Statuses: []sendhooks.Status{"failed"}}}))
	tm("list success,retrying", l(monitor.ListQuery{Limit: 20, Filter: monitor.Filter{Statuses: []sendhooks.Status{"success", "retrying"}}}))
	tm("list day", l(monitor.ListQuery{Limit: 20, Filter: monitor.Filter{CreatedFrom: base.Add(48*time.Hour + 123*time.Second), CreatedTo: base.Add(72*time.Hour + 7*time.Second)}}))
	tm("list delivered", l(monitor.ListQuery{Limit: 20, Filter: monitor.Filter{DeliveredFrom: base.Add(48 * time.Hour), DeliveredTo: base.Add(72 * time.Hour)}}))
	tm("page 1000 x100", l(monitor.ListQuery{Limit: 100, Offset: 99900}))
	tm("exact", l(monitor.ListQuery{Limit: 20, Filter: monitor.Filter{Search: "order-150000"}}))
	tm("substring", l(monitor.ListQuery{Limit: 20, Filter: monitor.Filter{Search: "receiver-7."}}))
	tm("substring none", l(monitor.ListQuery{Limit: 20, Filter: monitor.Filter{Search: "nothing-here"}}))
	tm("get", func() error { _, err := s.Get(ctx, "order-150000"); return err })
	now := time.Now()
	tm("stats 24h", func() error { _, err := s.Stats(ctx, monitor.StatsQuery{From: now.Add(-24 * time.Hour), To: now, Bucket: time.Hour}); return err })
	tm("stats 7d", func() error { _, err := s.Stats(ctx, monitor.StatsQuery{From: now.Add(-7 * 24 * time.Hour), To: now, Bucket: 6 * time.Hour}); return err })
	tm("stats 1h 5m", func() error { _, err := s.Stats(ctx, monitor.StatsQuery{From: now.Add(-1 * time.Hour), To: now, Bucket: 5 * time.Minute}); return err })
	fi, _ := os.Stat(filepath.Join(dir, "m.db"))
	fmt.Fprintf(os.Stderr, "db size %d MB\n", fi.Size()>>20)
}
