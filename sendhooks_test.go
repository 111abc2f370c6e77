package sendhooks

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseJob(t *testing.T) {
	t.Parallel()
	article := `{"url": "http://example.com/webhook", "webhookId": "unique-webhook-id",
		"messageId": "unique-message-id", "data": {"key1": "value1", "n": [1, 2.5, null]},
		"secretHash": "hash-value", "metaData": {"metaKey1": "metaValue1"}}`
	job, err := ParseJob([]byte(article))
	if err != nil {
		t.Fatal(err)
	}
	if job.URL != "http://example.com/webhook" || job.WebhookID != "unique-webhook-id" ||
		job.MessageID != "unique-message-id" || job.SecretHash != "hash-value" {
		t.Errorf("fields: %+v", job)
	}
	if got := string(job.Body()); got != `{"key1": "value1", "n": [1, 2.5, null]}` {
		t.Errorf("body must be data byte for byte, got %s", got)
	}
	if got := string(job.MetaData); got != `{"metaKey1": "metaValue1"}` {
		t.Errorf("metaData: %s", got)
	}
	noData, err := ParseJob([]byte(`{"url": "https://r.example"}`))
	if err != nil || string(noData.Body()) != "{}" {
		t.Errorf("a job without data posts {}: %q, %v", noData.Body(), err)
	}
}

func TestParseJobRefusesBadJobsWithAReason(t *testing.T) {
	t.Parallel()
	for doc, want := range map[string]string{
		``:                                 `the "data" field is empty`,
		`   `:                              `the "data" field is empty`,
		`{"url": "http://x", "data": {`:    `not a valid job JSON object`,
		`[1, 2]`:                           `not a valid job JSON object`,
		`{"url": 42}`:                      `not a valid job JSON object`,
		`{"webhookId": "w"}`:               `the job has no "url"`,
		`{"url": "  "}`:                    `the job has no "url"`,
		`{"url": "ftp://files.example/x"}`: `the url "ftp://files.example/x" is not http or https`,
		`{"url": "example.com/hook"}`:      `the url "example.com/hook" is not http or https`,
		`{"url": "http://"}`:               `the url "http://" has no host`,
		`{"url": "http://:80/"}`:           `the url "http://:80/" has no host`,
		`{"url": "https://:443"}`:          `the url "https://:443" has no host`,
		`{"url": "http://@:8080/"}`:        `the url "http://@:8080/" has no host`,
		`{"url": "http://a b/"}`:           `the url "http://a b/" does not parse`,
	} {
		_, err := ParseJob([]byte(doc))
		if err == nil || !IsBadJob(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseJob(%q) = %v, want a bad job error containing %q", doc, err, want)
		}
	}
}

func TestParseTimeReadsEveryForm(t *testing.T) {
	t.Parallel()
	want := time.Date(2024, 5, 24, 23, 6, 16, 53251798, time.UTC)
	for _, s := range []string{
		"2024-05-24 23:06:16.053251798 +0000 UTC m=+519.052021779", // the older engine
		"2024-05-24 23:06:16.053251798 +0000 UTC",
		"2024-05-24T23:06:16.053251798Z",
		"2024-05-25T01:06:16.053251798+02:00",
	} {
		got, err := ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if got, err := ParseTime(""); err != nil || !got.IsZero() {
		t.Errorf(`ParseTime("") = %v, %v; want the zero time`, got, err)
	}
	if _, err := ParseTime("yesterday"); err == nil || !strings.Contains(err.Error(), `"yesterday"`) {
		t.Errorf("ParseTime(yesterday) = %v, want an error naming the value", err)
	}
	// In UTC these fall in the years 10000 and -1, which RFC 3339 cannot write.
	for _, s := range []string{"9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+01:00"} {
		if _, err := ParseTime(s); err == nil || !strings.Contains(err.Error(), "outside the years 0000 to 9999") {
			t.Errorf("ParseTime(%q) = %v, want an error about the year", s, err)
		}
	}
}

func TestStatusEventJSON(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 29, 17, 0, 0, 123456789, time.UTC)
	ev := StatusEvent{WebhookID: "w", Status: StatusFailed, Created: Time{created}, Attempt: 2}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"created":"2026-11-29T17:00:00.123456789Z"`, `"delivered":""`, `"nextAttemptAt":""`,
		`"status":"failed"`, `"deliveryError":""`, `"numberOfTries":0`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("encoded event lacks %s: %s", want, raw)
		}
	}
	var back StatusEvent
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Created.Equal(created) || !back.Delivered.IsZero() || back.Attempt != 2 {
		t.Errorf("round trip: %+v", back)
	}
	old := `{"webhookId":"webhook-12345","status":"success","deliveryError":"","created":"2024-05-24 23:06:16.053251798 +0000 UTC m=+519.052021779","delivered":null}`
	if err := json.Unmarshal([]byte(old), &back); err != nil || back.Created.Year() != 2024 {
		t.Errorf("older engine's event: %+v, %v", back, err)
	}
	if !StatusSuccess.Final() || !StatusFailed.Final() || StatusRetrying.Final() {
		t.Error("Final: success and failed are final, retrying is not")
	}
}
