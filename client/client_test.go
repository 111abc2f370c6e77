package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/client"
	"github.com/sendhooks/sendhooks/internal/redistest"
)

// fullJob has every field set, with characters that JSON encoders like to
// escape and white space inside data that must survive as written.
var fullJob = sendhooks.Job{
	URL:        "http://127.0.0.1:9/hook?a=1&b=<2>",
	WebhookID:  "order-42",
	MessageID:  "msg-7",
	Data:       json.RawMessage(` {"order": 42, "note": "a < b"} `),
	SecretHash: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	MetaData:   json.RawMessage(`{"tenant":7}`),
}

const fullJobJSON = `{"url":"http://127.0.0.1:9/hook?a=1&b=<2>","webhookId":"order-42","messageId":"msg-7",` +
	`"data":{"order": 42, "note": "a < b"},"secretHash":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","metaData":{"tenant":7}}`

func TestSendWritesOneEntryWithTheJobJSON(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)

	id, err := client.New(rdb).Send(ctx, fullJob)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}

	entries, err := rdb.XRange(ctx, sendhooks.DefaultJobStream, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE hooks: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("stream %q holds %d entries, want 1: %v", sendhooks.DefaultJobStream, len(entries), entries)
	}
	if entries[0].ID != id {
		t.Errorf("Send returned id %q, the entry's id is %q", id, entries[0].ID)
	}
	want := map[string]any{"data": fullJobJSON}
	if got := entries[0].Values; len(got) != 1 || got["data"] != want["data"] {
		t.Errorf("entry fields = %v,\nwant %v", got, want)
	}
}

func TestSendLeavesOutEmptyFields(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)

	if _, err := client.New(rdb).Send(ctx, sendhooks.Job{URL: "https://127.0.0.1/x"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	entries, err := rdb.XRange(ctx, "hooks", "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE hooks: %v", err)
	}
	if len(entries) != 1 || entries[0].Values["data"] != `{"url":"https://127.0.0.1/x"}` {
		t.Errorf("entries = %v, want one with data {\"url\":\"https://127.0.0.1/x\"}", entries)
	}
}

func TestSendRefusesBadJobsAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	c := client.New(rdb)

	tests := []struct {
		name   string
		job    sendhooks.Job
		reason string
	}{
		{"no url", sendhooks.Job{Data: json.RawMessage(`{}`)}, `the job has no "url"`},
		{"not http", sendhooks.Job{URL: "ftp://127.0.0.1/x"}, `the url "ftp://127.0.0.1/x" is not http or https`},
		{"no host", sendhooks.Job{URL: "http:///x"}, `the url "http:///x" has no host`},
		{"data not json", sendhooks.Job{URL: "http://127.0.0.1/x", Data: json.RawMessage(`{"a":`)}, `the job's "data" is not valid JSON: "{\"a\":"`},
		{"metaData not json", sendhooks.Job{URL: "http://127.0.0.1/x", MetaData: json.RawMessage(`tenant=7`)}, `the job's "metaData" is not valid JSON: "tenant=7"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := c.Send(ctx, tt.job)
			var bad *sendhooks.BadJobError
			if !errors.As(err, &bad) {
				t.Fatalf("Send = %q, %v; want a *sendhooks.BadJobError", id, err)
			}
			if bad.Reason != tt.reason {
				t.Errorf("reason = %q,\nwant     %q", bad.Reason, tt.reason)
			}
			if id != "" {
				t.Errorf("id = %q, want none", id)
			}
		})
	}
	if n, err := rdb.Exists(ctx, "hooks").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS hooks = %d, %v; want 0: a bad job must not be written", n, err)
	}
}

func TestWithStreamWritesToThatStreamOnly(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	c := client.New(rdb, client.WithStream("tenant-a-hooks"))
	if c.Stream() != "tenant-a-hooks" {
		t.Errorf("Stream() = %q, want tenant-a-hooks", c.Stream())
	}

	id, err := c.Send(ctx, fullJob)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	entries, err := rdb.XRange(ctx, "tenant-a-hooks", "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE tenant-a-hooks: %v", err)
	}
	if len(entries) != 1 || entries[0].ID != id || entries[0].Values["data"] != fullJobJSON {
		t.Errorf("tenant-a-hooks = %v, want one entry %s with data %s", entries, id, fullJobJSON)
	}
	if n, err := rdb.Exists(ctx, sendhooks.DefaultJobStream).Result(); err != nil || n != 0 {
		t.Errorf("EXISTS hooks = %d, %v; want 0", n, err)
	}
}

func TestSendReportsRedisErrorsWithTheStream(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	srv.Kill(t)

	_, err := client.New(rdb).Send(context.Background(), fullJob)
	if err == nil || !strings.HasPrefix(err.Error(), `send job to stream "hooks": `) {
		t.Fatalf("Send with Redis down = %v, want an error starting with %q", err, `send job to stream "hooks": `)
	}
	if sendhooks.IsBadJob(err) {
		t.Errorf("a Redis failure is reported as a bad job: %v", err)
	}
}

// The engine reads what Encode writes as the same job, data byte for byte.
func TestEncodeIsReadBackByParseJob(t *testing.T) {
	doc, err := client.Encode(fullJob)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err := sendhooks.ParseJob(doc)
	if err != nil {
		t.Fatalf("ParseJob(%s): %v", doc, err)
	}
	want := fullJob
	want.Data = json.RawMessage(`{"order": 42, "note": "a < b"}`)
	if got.URL != want.URL || got.WebhookID != want.WebhookID || got.MessageID != want.MessageID ||
		got.SecretHash != want.SecretHash || string(got.Data) != string(want.Data) || string(got.MetaData) != string(want.MetaData) {
		t.Errorf("ParseJob(Encode(job)) = %+v,\nwant %+v", got, want)
	}
}
