package sendhooks

import (
	"bytes"
	"encoding/json"
	"testing"
)

// referenceJob is what encoding/json makes of a job document: ParseJob
// must agree with it on every document encoding/json accepts.
type referenceJob struct {
	URL        string          `json:"url"`
	WebhookID  string          `json:"webhookId"`
	MessageID  string          `json:"messageId"`
	Data       json.RawMessage `json:"data"`
	SecretHash string          `json:"secretHash"`
	MetaData   json.RawMessage `json:"metaData"`
}

var jobSeeds = []string{
	`{"url": "http://example.com/webhook", "webhookId": "unique-webhook-id", "messageId": "m", "data": {"key1": "value1"}, "secretHash": "hash-value", "metaData": {"metaKey1": "metaValue1"}}`,
	`{"URL":"https://a.example/x","WebhookID":"W","data":[1,{"a":"}"}],"metadata":null}`,
	`{"url":"https://a.example/\u00e9\"q","webhookId":"a\\b","data":"just a string","secretHash":null}`,
	`{"url":"https://a.example","url":"https://b.example","data":1e3,"data":true}`,
	` { "url" : "https://a.example" , "data" : { "nested" : { "deep" : [ "]" , "}" ] } } } `,
	`{"url":"https://a.example","extra":{"ignored":[1,2,3]},"webhookId":"\ud83d\ude00"}`,
	`{"url":"https://a.example","webhookId":"bad utf8 ` + "\xff" + `"}`,
	`{"url": 42}`, `{"url": "https://a.example", "webhookId": ["x"]}`, `[1,2]`, `"str"`, `{"url":`, ``,
}

func TestParseJobAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, doc := range jobSeeds {
		compareWithEncodingJSON(t, []byte(doc))
	}
}

func FuzzParseJob(f *testing.F) {
	for _, doc := range jobSeeds {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		compareWithEncodingJSON(t, doc)
	})
}

func compareWithEncodingJSON(t *testing.T, doc []byte) {
	t.Helper()
	job, err := ParseJob(doc)
	if err != nil && !IsBadJob(err) {
		t.Fatalf("ParseJob(%q): error %v is not a bad job error", doc, err)
	}
	var ref referenceJob
	refErr := json.Unmarshal(doc, &ref)
	trimmed := bytes.TrimSpace(doc)
	isObject := len(trimmed) > 0 && trimmed[0] == '{'
	if refErr != nil || !isObject {
		if err == nil {
			t.Fatalf("ParseJob(%q) accepted a document encoding/json refuses (%v)", doc, refErr)
		}
		return
	}
	got := referenceJob{job.URL, job.WebhookID, job.MessageID, job.Data, job.SecretHash, job.MetaData}
	if got.URL != ref.URL || got.WebhookID != ref.WebhookID || got.MessageID != ref.MessageID ||
		got.SecretHash != ref.SecretHash || !bytes.Equal(got.Data, ref.Data) || !bytes.Equal(got.MetaData, ref.MetaData) {
		t.Fatalf("ParseJob(%q) = %+v, encoding/json says %+v", doc, got, ref)
	}
	if (err == nil) != (ref.validate() == nil) {
		t.Fatalf("ParseJob(%q) error %v disagrees with validation of %+v", doc, err, ref)
	}
}

func (r referenceJob) validate() error {
	return Job{URL: r.URL}.Validate()
}

func BenchmarkParseJob(b *testing.B) {
	doc := []byte(jobSeeds[0])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJob(doc); err != nil {
			b.Fatal(err)
		}
	}
}
