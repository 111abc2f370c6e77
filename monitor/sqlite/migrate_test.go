package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/monitor/sqlite"
	"github.com/sendhooks/sendhooks/monitor/storetest"
)

// receiverJobs are webhooks over three hours to three receivers, each
// with its own URL (a token in the query), one URL longer than the 512
// bytes earlier versions kept of it, and one with no host. Each receiver
// has five webhooks of each status, but for those two URLs (retrying).
func receiverJobs() []storetest.Job {
	base := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	statuses := [][]sendhooks.Status{{sendhooks.StatusFailed}, {sendhooks.StatusSuccess}, {sendhooks.StatusRetrying}}
	var jobs []storetest.Job
	for i := range 45 {
		url := fmt.Sprintf("http://127.0.0.1:%d/hooks/%d?token=%d", 9001+i%3, i, i)
		switch i {
		case 7: // cut at 512 bytes inside an escape
			url = "http://127.0.0.1:9001/" + strings.Repeat("%7Bxyz/", 100)
		case 8:
			url = "/no/host"
		}
		created := base.Add(time.Duration(i*4) * time.Minute)
		jobs = append(jobs, storetest.Job{
			StreamID: fmt.Sprintf("%d-0", created.UnixMilli()), WebhookID: fmt.Sprintf("hook-%d", i),
			URL: url, Created: created, Attempts: statuses[i/3%len(statuses)], DurationMs: 20,
		})
	}
	return jobs
}

// applyJobs stores the jobs' events in a store on the SQLite file at path.
func applyJobs(t *testing.T, path string, jobs []storetest.Job) {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	for _, j := range jobs {
		if err := s.Apply(context.Background(), j.Events()); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
}

// rawDB opens the SQLite file at path without the store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rollupRows lists the rollups table, ordered.
func rollupRows(t *testing.T, path string) []string {
	t.Helper()
	res, err := rawDB(t, path).Query(`SELECT kind, bucket, status, url, bin, n FROM rollups ORDER BY kind, bucket, status, url, bin`)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	var out []string
	for res.Next() {
		var kind, status, url string
		var bucket, bin, n int64
		if err := res.Scan(&kind, &bucket, &status, &url, &bin, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%d|%s|%s|%d|%d", kind, bucket, status, url, bin, n))
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// asEarlierVersion rewrites the store's receiver counters at path as the
// per-URL counters an earlier version kept: one per URL (its first 512
// bytes), status and hour. It returns how many it wrote.
func asEarlierVersion(t *testing.T, path string, jobs []storetest.Job) int {
	t.Helper()
	counts := map[[3]any]int{}
	for _, j := range jobs {
		counts[[3]any{j.Created.Truncate(time.Hour).UnixMilli(), string(j.Status()), j.URL[:min(len(j.URL), 512)]}]++
	}
	db := rawDB(t, path)
	if _, err := db.Exec(`DELETE FROM rollups WHERE kind = 'r'`); err != nil {
		t.Fatal(err)
	}
	for k, n := range counts {
		if _, err := db.Exec(`INSERT INTO rollups (kind, bucket, status, url, bin, n) VALUES ('e', ?, ?, ?, 0, ?)`, k[0], k[1], k[2], n); err != nil {
			t.Fatal(err)
		}
	}
	return len(counts)
}

// TestSetupMovesPerURLCountersToReceivers opens a file whose statistics
// an earlier version counted per URL: Setup moves those counters into
// per-receiver ones, a batch per transaction, and a move stopped between
// batches is finished by the next Setup with nothing counted twice. The
// result is exactly what a store counting per receiver from the start
// holds, and pruning every webhook then leaves no counter.
func TestSetupMovesPerURLCountersToReceivers(t *testing.T) {
	jobs := receiverJobs()
	fresh, old := filepath.Join(t.TempDir(), "fresh.db"), filepath.Join(t.TempDir(), "old.db")
	applyJobs(t, fresh, jobs)
	applyJobs(t, old, jobs)
	want := rollupRows(t, fresh)
	perURL := asEarlierVersion(t, old, jobs)
	if perURL != len(jobs) {
		t.Fatalf("%d per-URL counters, want one per webhook: %d", perURL, len(jobs))
	}

	sqlite.SetMoveBatch(t, 7)
	sqlite.StopMovingAfter(t, 2)
	s, err := sqlite.Open(old)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close(context.Background())
	if err := s.Setup(context.Background(), 0); err == nil {
		t.Fatal("Setup went through a move told to stop after 2 batches")
	}
	var left int
	if err := rawDB(t, old).QueryRow(`SELECT count(*) FROM rollups WHERE kind = 'e'`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != perURL-14 {
		t.Fatalf("%d per-URL counters left after 2 batches of 7 out of %d, want %d", left, perURL, perURL-14)
	}

	sqlite.StopMovingAfter(t, 0)
	if err := s.Setup(context.Background(), 0); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if got := rollupRows(t, old); !slices.Equal(got, want) {
		t.Fatalf("rollups after the move\n got %v\nwant %v", got, want)
	}
	st, err := s.Stats(context.Background(), monitor.StatsQuery{From: jobs[0].Created, To: jobs[len(jobs)-1].Created, Bucket: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	wantFailing := []monitor.Endpoint{
		{URL: "http://127.0.0.1:9001", Failed: 5, Total: 16, FailureRate: 5.0 / 16}, // job 7's long URL too
		{URL: "http://127.0.0.1:9002", Failed: 5, Total: 14, FailureRate: 5.0 / 14},
		{URL: "http://127.0.0.1:9003", Failed: 5, Total: 14, FailureRate: 5.0 / 14}, // job 8 has no host
	}
	if !slices.Equal(st.FailingEndpoints, wantFailing) {
		t.Errorf("failing endpoints\n got %+v\nwant %+v", st.FailingEndpoints, wantFailing)
	}
	if n, err := s.Prune(context.Background(), jobs[len(jobs)-1].Created.Add(time.Hour), 1000); err != nil || n != len(jobs) {
		t.Fatalf("Prune = %d, %v; want %d", n, err, len(jobs))
	}
	if got := rollupRows(t, old); len(got) != 0 {
		t.Errorf("rollups left after pruning every webhook: %v", got)
	}
}
