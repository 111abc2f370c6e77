package bench

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMonitor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := Monitor(ctx, MonitorOptions{Webhooks: 300, Requests: 2, Progress: &progress})
	if err != nil {
		t.Fatalf("Monitor: %v\nprogress:\n%s", err, &progress)
	}
	if res.Webhooks != 300 || res.EventsPerSecond <= 0 || res.IngestDuration <= 0 {
		t.Errorf("Webhooks %d, EventsPerSecond %v, IngestDuration %v; want 300 and both positive",
			res.Webhooks, res.EventsPerSecond, res.IngestDuration)
	}
	var names []string
	for _, a := range res.API {
		names = append(names, a.Name)
		if a.P50 <= 0 || a.P95 < a.P50 || a.Max < a.P95 || !strings.HasPrefix(a.Path, "/api/sendhooks/v1/") {
			t.Errorf("API row %+v: want a path under the API and 0 < P50 <= P95 <= Max", a)
		}
	}
	want := []string{"list (first page)", "filter status=failed", "search", "hook by id", "stats"}
	if !slices.Equal(names, want) {
		t.Errorf("API rows %q, want %q", names, want)
	}
	if !strings.Contains(progress.String(), "ingested 300 status events") {
		t.Errorf("progress lacks the ingestion line:\n%s", &progress)
	}
}

func TestMonitorRefusesNoWork(t *testing.T) {
	if _, err := Monitor(context.Background(), MonitorOptions{Webhooks: 0, Requests: 1}); err == nil {
		t.Error("Monitor with no webhooks: no error")
	}
}
