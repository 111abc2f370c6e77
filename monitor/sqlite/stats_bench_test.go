package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/sqlite"
	"github.com/sendhooks/sendhooks/monitor/storetest"
)

// BenchmarkStatsTokenURLs reads a day's statistics of 40,000 webhooks
// sent to 10 receivers, every webhook's URL holding a token of its own
// (as Slack's and Discord's do): the failing endpoints must cost as many
// counters as receivers, not webhooks.
//
//	go test ./monitor/sqlite/ -run '^$' -bench StatsTokenURLs -benchtime 20x
func BenchmarkStatsTokenURLs(b *testing.B) {
	const hooks, receivers = 40_000, 10
	s, err := sqlite.Open(filepath.Join(b.TempDir(), "monitor.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	now := time.Now().UTC().Truncate(time.Hour)
	statuses := []sendhooks.Status{sendhooks.StatusSuccess, sendhooks.StatusFailed, sendhooks.StatusSuccess}
	var batch []monitor.Event
	for i := range hooks {
		created := now.Add(-24 * time.Hour).Add(time.Duration(i) * 24 * time.Hour / hooks)
		j := storetest.Job{
			StreamID: fmt.Sprintf("%d-%d", created.UnixMilli(), i), WebhookID: fmt.Sprintf("w%d", i),
			URL:     fmt.Sprintf("https://receiver-%02d.example.com/services/T%06d/B%06d/tok%d", i%receivers, i, i, i),
			Created: created, Attempts: []sendhooks.Status{statuses[i%len(statuses)]}, DurationMs: 20,
		}
		if batch = append(batch, j.Events()...); len(batch) >= 500 || i == hooks-1 {
			if err := s.Apply(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	q := monitor.StatsQuery{From: now.Add(-24 * time.Hour), To: now, Bucket: time.Hour}
	b.ResetTimer()
	for b.Loop() {
		st, err := s.Stats(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		if st.Total != hooks || len(st.FailingEndpoints) != receivers {
			b.Fatalf("total %d, %d failing endpoints; want %d, %d", st.Total, len(st.FailingEndpoints), hooks, receivers)
		}
	}
}
