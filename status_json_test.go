package sendhooks

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func sampleEvent(text string) StatusEvent {
	at := time.Date(2026, 11, 29, 17, 0, 0, 5, time.UTC)
	return StatusEvent{
		WebhookID: text, Status: StatusRetrying, DeliveryError: text, URL: "https://r.example/" + text,
		Created: Time{at}, PayloadSize: 12, NumberOfTries: 2, MessageID: text, StreamID: "1-0",
		Attempt: 2, StatusCode: 503, DurationMs: 1.25, AttemptedAt: Time{at}, NextAttemptAt: Time{at.Add(time.Second)},
		Response: text, MetaData: json.RawMessage(`{"k": [1, "v"]}`), Job: `{"url": "` + text + `"}`,
	}
}

var eventTexts = []string{
	"", "plain", `quote " backslash \ slash /`, "<script>alert(1)</script> & more",
	"ctrl \x00\x01\b\f\n\r\t\x1f end", "unicode é ü 😀 \u2028 \u2029", "bad utf8 \xff\xfe end",
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, text := range eventTexts {
		checkAppendJSON(t, sampleEvent(text))
	}
	checkAppendJSON(t, StatusEvent{}) // every optional key omitted, zero times
	checkAppendJSON(t, StatusEvent{DurationMs: 1e-9, MetaData: json.RawMessage(`{not json`)})
	checkAppendJSON(t, StatusEvent{DurationMs: 123456.789})
}

func FuzzAppendJSON(f *testing.F) {
	for _, text := range eventTexts {
		f.Add(text, 1.5)
	}
	f.Fuzz(func(t *testing.T, text string, ms float64) {
		ev := sampleEvent(text)
		ev.DurationMs = ms
		checkAppendJSON(t, ev)
	})
}

func checkAppendJSON(t *testing.T, ev StatusEvent) {
	t.Helper()
	got := ev.AppendJSON(nil)
	if !json.Valid(got) {
		t.Fatalf("AppendJSON wrote invalid JSON: %s", got)
	}
	want, err := json.Marshal(ev)
	if err != nil {
		return // NaN and the like: json.Marshal refuses, AppendJSON writes 0
	}
	if !json.Valid(ev.MetaData) && len(ev.MetaData) > 0 {
		return // json.Marshal refuses invalid raw values; AppendJSON writes null
	}
	var compacted bytes.Buffer
	_ = json.Compact(&compacted, got)
	if !bytes.Equal(compacted.Bytes(), want) {
		t.Fatalf("AppendJSON and json.Marshal differ:\n got %s\nwant %s", compacted.Bytes(), want)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	ev := sampleEvent("a typical delivery error text")
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = ev.AppendJSON(buf[:0])
	}
}
