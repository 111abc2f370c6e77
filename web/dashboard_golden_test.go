package web

import (
	"bytes"
	"context"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
	"github.com/sendhooks/sendhooks/templates/detail"
	"github.com/sendhooks/sendhooks/templates/errorpage"
	"github.com/sendhooks/sendhooks/templates/layout"
	"github.com/sendhooks/sendhooks/templates/list"
	"github.com/sendhooks/sendhooks/templates/login"
	"github.com/sendhooks/sendhooks/templates/stats"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// xss is text from a job that must show as text.
const xss = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">`

func at(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

// goldenHooks are fixed hooks: a success, a failure with hostile text, an
// old engine's hook without attempts.
func goldenHooks() []monitor.Hook {
	return []monitor.Hook{
		{
			ID: "1767348000000-0", IDCopy: "1767348000000-0", StreamID: "1767348000000-0", URL: "https://receiver.example/hook",
			Status: sendhooks.StatusSuccess, Created: at("2026-01-02T10:00:00Z"), Delivered: at("2026-01-02T10:00:06Z"),
			ExternalID: "order-42", MessageID: "m-42", PayloadSize: 12, NumberOfTries: 2,
			Attempts: []monitor.Attempt{
				{Number: 1, Status: sendhooks.StatusRetrying, Time: at("2026-01-02T10:00:00Z"), StatusCode: 503, DurationMs: 12.5,
					Error: "receiver answered 503 Service Unavailable", Response: "try later", NextAttemptAt: at("2026-01-02T10:00:05Z")},
				{Number: 2, Status: sendhooks.StatusSuccess, Time: at("2026-01-02T10:00:06Z"), StatusCode: 200, DurationMs: 8},
			},
			MetaData: `{"tenant":7}`,
			Job:      `{"url":"https://receiver.example/hook","webhookId":"order-42","data":{"order":42,"items":[1,2]},"secretHash":"whsec_c2VjcmV0"}`,
		},
		{
			ID: "1767348000001-0", IDCopy: "1767348000001-0", StreamID: "1767348000001-0", URL: "https://evil.example/" + xss,
			Status: sendhooks.StatusFailed, Created: at("2026-01-02T09:59:00Z"), Error: "receiver answered 500: " + xss,
			ExternalID: xss, PayloadSize: 80, NumberOfTries: 1,
			Attempts: []monitor.Attempt{
				{Number: 1, Status: sendhooks.StatusFailed, Time: at("2026-01-02T09:59:00Z"), StatusCode: 500, DurationMs: 1500,
					Error: "receiver answered 500: " + xss, Response: xss},
			},
			MetaData: monitor.RawJSON(`{"note":"` + strings.ReplaceAll(xss, `"`, `\"`) + `"}`),
			Job:      monitor.JobJSON(`{"url":"https://evil.example/","data":{"html":"` + strings.ReplaceAll(xss, `"`, `\"`) + `"},"secretHash":"never-shown"}`),
		},
		{
			ID: "old-1", IDCopy: "old-1", URL: "https://legacy.example/x", Status: sendhooks.StatusRetrying,
			Created: at("2026-01-02T09:00:00Z"), ExternalID: "old-1", NumberOfTries: 3, Attempts: []monitor.Attempt{},
		},
	}
}

func goldenPage(nav string) layout.Page {
	return layout.Page{Title: "Golden", Nav: nav, CSRF: "csrf-token", Open: true, Refresh: "5s"}
}

func goldenStats() stats.Data {
	rate := 0.75
	from := time.Date(2026, 1, 2, 7, 0, 0, 0, time.UTC)
	st := monitor.Stats{
		From: from, To: from.Add(3 * time.Hour), Bucket: "1h", Total: 5,
		ByStatus: map[sendhooks.Status]int{"success": 3, "failed": 1, "retrying": 1},
		Buckets: []monitor.Bucket{
			{Start: from, Counts: map[sendhooks.Status]int{"success": 2}},
			{Start: from.Add(time.Hour), Counts: map[sendhooks.Status]int{"failed": 1, "retrying": 1}},
			{Start: from.Add(2 * time.Hour), Counts: map[sendhooks.Status]int{}},
			{Start: from.Add(3 * time.Hour), Counts: map[sendhooks.Status]int{"success": 1}},
		},
		SuccessRate: &rate,
		Latency:     monitor.Latency{Count: 6, P50: 8, P95: 120, P99: 1500},
		FailingEndpoints: []monitor.Endpoint{
			{URL: "https://evil.example/" + xss, Failed: 1, Total: 2, FailureRate: 0.5},
		},
	}
	return stats.Data{Range: stats.Ranges[0], Stats: st,
		Health: stats.Health{Available: true, RetrySet: 4, Lag: 2, Pending: 1}}
}

func TestGoldenComponents(t *testing.T) {
	hooks := goldenHooks()
	q := url.Values{"status": {"failed"}, "search": {"evil"}, "limit": {"2"}}
	listData := list.Data{Hooks: hooks[:2], Total: 5, Limit: 2, Query: q, At: url.Values{"older": {"1767225600000.MQ"}},
		Older: "1767225500000.Mg", Newer: "1767225600000.Mw"}
	signedIn := goldenPage(layout.NavHooks)
	signedIn.Open, signedIn.User = false, "admin"
	tests := []struct {
		name string
		c    templ.Component
	}{
		{"list", list.Page(goldenPage(layout.NavHooks), list.Data{Hooks: hooks, Total: 3, Limit: 20,
			Query: url.Values{}, Notice: "2 failed webhooks queued for retry."})},
		{"list_table_paged", list.Table(goldenPage(layout.NavHooks), listData)},
		{"list_confirm_retry", list.ConfirmRetry(goldenPage(layout.NavHooks), list.Confirm{Count: 3, Max: 1000, Query: q})},
		{"list_confirm_retry_partial", list.ConfirmRetry(goldenPage(layout.NavHooks), list.Confirm{Count: 3, Partial: true, Max: 1000, Query: q})},
		{"detail_success", detail.Page(signedIn, detail.Data{Hook: hooks[0], Notice: "Queued for retry as attempt 3."})},
		{"detail_xss", detail.Page(goldenPage(layout.NavHooks), detail.Data{Hook: hooks[1]})},
		{"detail_old_engine", detail.Live(goldenPage(layout.NavHooks), detail.Data{Hook: hooks[2]})},
		{"detail_not_found", detail.NotFound(goldenPage(layout.NavHooks), "<b>nope</b>")},
		{"stats", stats.Page(goldenPage(layout.NavStats), goldenStats())},
		{"stats_empty", stats.Page(goldenPage(layout.NavStats), stats.Data{Range: stats.Ranges[1],
			Stats:  monitor.Stats{ByStatus: map[sendhooks.Status]int{}},
			Health: stats.Health{Problem: "Redis did not answer"}})},
		{"login", login.Page(layout.Page{Title: "Sign in", CSRF: "csrf-token"}, login.Data{User: "admin", Next: "/stats", Problem: "Wrong user or password."})},
		{"error", errorpage.Page(goldenPage(""), "Bad Request", `status must be success, failed or retrying, got "<x>"`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.c.Render(context.Background(), &b); err != nil {
				t.Fatal(err)
			}
			got := b.Bytes()
			if bytes.Contains(got, []byte("<script>window")) || bytes.Contains(got, []byte("<img src=x")) || bytes.Contains(got, []byte("never-shown")) {
				t.Errorf("job text rendered as markup or secret shown:\n%s", got)
			}
			compareGolden(t, filepath.Join("testdata", tt.name+".golden"), got)
		})
	}
}

// compareGolden checks got against the file, or rewrites it with -update.
func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./web/ -run TestGolden -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendering (go test ./web/ -run TestGolden -update rewrites it):\n%s", path, got)
	}
}
