// Package sendhooks holds the domain types that every part of Sendhooks
// shares: the webhook job a producer writes into the jobs stream, and the
// status event the engine writes into the status stream for every step of a
// job's life. The engine produces these, the monitor consumes them; neither
// depends on the other, only on this package.
//
// The wire shapes are compatible with the older sendhooks-engine and
// sendhooks-monitoring projects: producers keep writing the same job JSON,
// and consumers of the old status events keep finding the keys they know.
package sendhooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Default stream names shared by the engine and the monitor, so that a
// pair started with no configuration at all finds each other.
const (
	DefaultJobStream    = "hooks"
	DefaultStatusStream = "hooks-status"
)

// RetrySet names the sorted set where the engine keeps the jobs of
// jobStream that wait for a later attempt.
func RetrySet(jobStream string) string { return jobStream + "-retry" }

// DeadLetterStream names the stream where the engine keeps the jobs of
// jobStream that failed for good.
func DeadLetterStream(jobStream string) string { return jobStream + "-dead" }

// RejectedStream names the stream where the monitor sets aside the status
// events of statusStream that its store refuses for good.
func RejectedStream(statusStream string) string { return statusStream + "-rejected" }

// StreamField is the field of a stream entry (jobs and status events alike)
// whose value is the JSON document.
const StreamField = "data"

// Fields of a jobs-stream entry beside StreamField. Producers write only
// StreamField; the engine (when a retry falls due) and the monitor (when a
// user retries a webhook) write the job again with these, so that all the
// attempts of one job keep one identity and one count.
const (
	// FieldOrigin holds the stream id under which the job first arrived;
	// status events report it as streamId.
	FieldOrigin = "origin"
	// FieldAttempt holds the number of the attempt to make (1-based).
	FieldAttempt = "attempt"
	// FieldRunStart holds the attempt number at which the current retry
	// schedule started: a job retried by hand gets the whole schedule again.
	FieldRunStart = "runStart"
	// FieldDeferrals counts how often the job was put back because its
	// receiver was already at its limit of concurrent requests.
	FieldDeferrals = "deferrals"
)

// Job is one webhook to deliver, as a producer writes it into the jobs
// stream: XADD hooks * data '<json>'.
type Job struct {
	// URL is where the payload is POSTed; http and https only.
	URL string `json:"url"`
	// WebhookID is the producer's identifier for this webhook. It is sent as
	// the webhook-id header, so receivers can drop duplicate deliveries.
	WebhookID string `json:"webhookId,omitempty"`
	// MessageID is the producer's identifier for the message it belongs to.
	MessageID string `json:"messageId,omitempty"`
	// Data is the request body, kept byte for byte as the producer wrote it.
	Data json.RawMessage `json:"data,omitempty"`
	// SecretHash keys the request signature. A value starting with "whsec_"
	// is base64 after the prefix (Standard Webhooks); any other value is used
	// as raw key bytes.
	SecretHash string `json:"secretHash,omitempty"`
	// MetaData is the producer's own data about the webhook; it is not sent
	// to the receiver, only carried into status events.
	MetaData json.RawMessage `json:"metaData,omitempty"`
}

// BadJobError says why a stream entry cannot be delivered at all. Such an
// entry ends with a failed status event at once and is never retried.
type BadJobError struct {
	Reason string
}

func (e *BadJobError) Error() string { return "bad job: " + e.Reason }

// IsBadJob reports whether err says that a job can never be delivered.
func IsBadJob(err error) bool {
	var bad *BadJobError
	return errors.As(err, &bad)
}

func badJob(format string, args ...any) error {
	return &BadJobError{Reason: fmt.Sprintf(format, args...)}
}

// Validate checks the fields a delivery cannot do without.
func (j Job) Validate() error {
	if strings.TrimSpace(j.URL) == "" {
		return badJob(`the job has no "url"`)
	}
	u, err := url.Parse(j.URL)
	if err != nil {
		return badJob("the url %q does not parse: %v", j.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return badJob("the url %q is not http or https", j.URL)
	}
	if u.Hostname() == "" { // "http://:80/" has a Host, ":80", but no host to reach
		return badJob("the url %q has no host", j.URL)
	}
	return nil
}

// Body is what is POSTed to the receiver: the job's data, or an empty JSON
// object when the producer gave none.
func (j Job) Body() []byte {
	if len(j.Data) == 0 {
		return []byte("{}")
	}
	return j.Data
}

// Version names this build of Sendhooks; it is sent in the User-Agent.
// Release builds set it with -ldflags "-X github.com/sendhooks/sendhooks.Version=...".
var Version = "0.1.0-dev"
