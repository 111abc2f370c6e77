package monitor

import (
	"bufio"
	"bytes"
	"os"
	"testing"

	"github.com/sendhooks/sendhooks"
)

// fixtureLines reads the older spellings' events, from the copy kept with
// the tests.
func fixtureLines(t *testing.T) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/status-events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines = append(lines, append([]byte(nil), sc.Bytes()...))
		}
	}
	return lines
}

// TestFixtureCopyIsCurrent checks testdata against the shared fixtures,
// where a checkout has them beside the repository.
func TestFixtureCopyIsCurrent(t *testing.T) {
	shared, err := os.ReadFile("../../shared/fixtures/status-events.jsonl")
	if err != nil {
		t.Skipf("no shared fixtures beside the repository: %v", err)
	}
	local, err := os.ReadFile("testdata/status-events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, local) {
		t.Fatal("testdata/status-events.jsonl differs from shared/fixtures: copy it again")
	}
}

func TestParseEventSpellings(t *testing.T) {
	lines := fixtureLines(t)
	if len(lines) != 3 {
		t.Fatalf("fixture has %d events, want 3", len(lines))
	}
	tests := []struct {
		raw       []byte
		webhookID string
		status    sendhooks.Status
		deliveryE string
		created   string
	}{
		{lines[0], "webhook-12345", sendhooks.StatusSuccess, "", "2024-05-24T23:06:16.053251798Z"},
		{lines[1], "webhook-12346", sendhooks.StatusFailed, "webhook sending failed with status: 500, response body: ", "2024-05-24T23:07:01.5Z"},
		{lines[2], "webhook-12347", sendhooks.StatusSuccess, "", "2024-05-25T10:00:00Z"},
		{[]byte(`{"webhook_id":"w","status":"FAILED","delivery_error":"boom","payload_size":"17","created":"2024-05-25T10:00:00Z"}`),
			"w", sendhooks.StatusFailed, "boom", "2024-05-25T10:00:00Z"},
	}
	for _, tt := range tests {
		ev, err := ParseEvent(tt.raw)
		if err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		if ev.WebhookID != tt.webhookID || ev.Status != tt.status || ev.DeliveryError != tt.deliveryE ||
			ev.Created.UTC().Format("2006-01-02T15:04:05.999999999Z07:00") != tt.created {
			t.Errorf("%s: got %q %q %q %s", tt.raw, ev.WebhookID, ev.Status, ev.DeliveryError, ev.Created.UTC())
		}
	}
}

func TestParseEventRefuses(t *testing.T) {
	for _, raw := range []string{
		`not json`,
		`["a"]`,
		`{"webhookId":"w"}`,
		`{"webhookId":"","url":"https://r.example/"}`,
		`{"webhookId":"w","status":"success","created":"yesterday"}`,
	} {
		if _, err := ParseEvent([]byte(raw)); err == nil {
			t.Errorf("%s: parsed, want an error", raw)
		}
	}
}

// TestParseEventWithoutWebhookID keeps the old engine's event for a job
// without a webhookId: it names no job, and goes to a hook of its own
// keyed by its status-stream entry id.
func TestParseEventWithoutWebhookID(t *testing.T) {
	for _, raw := range []string{
		`{"webhookId":"","status":"success","deliveryError":"","url":"https://r.example/","created":"2024-05-24 10:00:00.5 +0000 UTC m=+1.5","payloadSize":2,"numberOfTries":0,"delivered":"2024-05-24 10:00:01 +0000 UTC m=+2.5"}`,
		`{"status":"failed"}`,
	} {
		ev, err := ParseEvent([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if key := (Event{EntryID: "1716544800000-3", StatusEvent: ev}).Key(); key != "1716544800000-3" {
			t.Errorf("%s: key %q, want the entry id", raw, key)
		}
	}
}
