package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// TestRetentionRemovesOldWebhooksFromEveryPage stores webhooks of the last
// three days, runs the monitor's retention with RETENTION=36h, and checks
// that the older ones are gone from the list, its counts and filters, the
// detail pages, the statistics and the dashboard, and the newer ones stay.
func TestRetentionRemovesOldWebhooksFromEveryPage(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	a := startAPI(t, APIConfig{Now: func() time.Time { return now }})
	var old, kept []string
	for i := range 72 {
		created := now.Add(-time.Duration(i)*time.Hour - 30*time.Minute)
		sid := created.Format("20060102150405") + "-0"
		status := sendhooks.StatusSuccess
		if i%4 == 0 {
			status = sendhooks.StatusFailed
		}
		ev := sendhooks.StatusEvent{StreamID: sid, WebhookID: "ret-" + sid, URL: "http://127.0.0.1:9/r", Status: status,
			Attempt: 1, NumberOfTries: 1, DurationMs: 7, Created: sendhooks.Time{Time: created}}
		if status == sendhooks.StatusSuccess {
			ev.Delivered = sendhooks.Time{Time: created.Add(time.Second)}
		}
		a.seed(t, ev)
		if i < 36 {
			kept = append(kept, sid)
		} else {
			old = append(old, sid)
		}
	}
	svc := monitor.New(monitor.Config{Retention: 36 * time.Hour}, a.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := svc.PruneOnce(context.Background()); err != nil {
		t.Fatal(err)
	}

	for _, q := range []struct {
		query string
		want  int
	}{
		{"", 36},
		{"?status=failed", 9},
		{"?status=success", 27},
		{"?search=ret-", 36},
		{"?deliveredStartDate=" + now.Add(-80*time.Hour).Format(time.RFC3339), 27},
		{"?createdStartDate=" + now.Add(-80*time.Hour).Format(time.RFC3339), 36},
	} {
		var got struct {
			Data []monitor.Hook
			Meta listMeta
		}
		a.getJSON(t, "/api/sendhooks/v1/hooks"+q.query+sep(q.query)+"limit=100", &got)
		if got.Meta.TotalItems != int64(q.want) || len(got.Data) != q.want {
			t.Errorf("list %q after retention: %d listed, total %d; want %d", q.query, len(got.Data), got.Meta.TotalItems, q.want)
		}
		for _, h := range got.Data {
			if !h.Created.After(now.Add(-36 * time.Hour)) {
				t.Errorf("list %q still shows %s, created %v", q.query, h.ID, h.Created)
			}
		}
	}
	for _, id := range old {
		if status, _, _ := a.do(t, http.MethodGet, "/api/sendhooks/v1/hooks/"+id, nil); status != http.StatusNotFound {
			t.Errorf("GET /hooks/%s after retention: %d, want 404", id, status)
		}
		if status, _, _ := a.do(t, http.MethodGet, "/api/sendhooks/v1/hooks/ret-"+id, nil); status != http.StatusNotFound {
			t.Errorf("GET /hooks/ret-%s after retention: %d, want 404", id, status)
		}
	}
	for _, id := range kept {
		if status, _, _ := a.do(t, http.MethodGet, "/api/sendhooks/v1/hooks/"+id, nil); status != http.StatusOK {
			t.Errorf("GET /hooks/%s after retention: %d, want 200", id, status)
		}
	}
	var st monitor.Stats
	a.getJSON(t, "/api/sendhooks/v1/stats?from="+now.Add(-7*24*time.Hour).Format(time.RFC3339)+"&bucket=24h", &st)
	if st.Total != 36 || st.ByStatus[sendhooks.StatusFailed] != 9 || st.Latency.Count != 36 || len(st.FailingEndpoints) != 1 || st.FailingEndpoints[0].Total != 36 {
		t.Errorf("stats after retention: total %d, by status %v, %d attempts, endpoints %+v; want 36, 9 failed, 36, one endpoint of 36",
			st.Total, st.ByStatus, st.Latency.Count, st.FailingEndpoints)
	}

	dash := httptest.NewServer(NewDashboard(a.store, monitor.NewRetrier(a.rdb, a.store, jobStream), DashboardConfig{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now },
	}))
	defer dash.Close()
	for path, want := range map[string]string{"/?limit=100": "36 webhooks", "/stats?range=7d": `<div class="value">36</div><div class="label">Webhooks</div>`} {
		resp, err := http.Get(dash.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Errorf("dashboard %s after retention does not show %q", path, want)
		}
		if strings.Contains(string(body), old[0]) {
			t.Errorf("dashboard %s after retention still shows %s", path, old[0])
		}
	}
}

// sep is the separator before one more query parameter.
func sep(query string) string {
	if query == "" {
		return "?"
	}
	return "&"
}
