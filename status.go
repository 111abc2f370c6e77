package sendhooks

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Status is where a job stands. Success and Failed are final, as the older
// engine wrote them; Retrying is a step on the way.
type Status string

// The statuses a status event can carry.
const (
	StatusRetrying Status = "retrying" // an attempt failed and another is scheduled
	StatusSuccess  Status = "success"  // the receiver answered 2xx
	StatusFailed   Status = "failed"   // no attempt is left, or the job can never be delivered
)

// Final reports whether no event after this one can change the outcome.
func (s Status) Final() bool { return s == StatusSuccess || s == StatusFailed }

// StatusEvent is one entry of the status stream:
// XADD hooks-status * data '<json>'.
//
// It is a superset of the older engine's event (webhookId, status,
// deliveryError, url, created, payloadSize, numberOfTries, delivered), so
// consumers of that event keep working; every other key is new.
type StatusEvent struct {
	// WebhookID is the producer's webhookId (empty for a job that did not parse).
	WebhookID string `json:"webhookId"`
	// Status is the outcome of this step.
	Status Status `json:"status"`
	// DeliveryError says why the attempt or the job failed; empty on success.
	DeliveryError string `json:"deliveryError"`
	// URL is the job's target.
	URL string `json:"url"`
	// Created is when the job entered the jobs stream.
	Created Time `json:"created"`
	// PayloadSize is the size of the POSTed body in bytes.
	PayloadSize int `json:"payloadSize"`
	// NumberOfTries is the number of attempts made so far.
	NumberOfTries int `json:"numberOfTries"`
	// Delivered is when the receiver accepted the job; zero unless Status is success.
	Delivered Time `json:"delivered"`

	// MessageID is the producer's messageId.
	MessageID string `json:"messageId,omitempty"`
	// StreamID is the jobs-stream entry id under which the job first
	// arrived. It identifies one job across all its attempts, even when
	// producers reuse a webhookId.
	StreamID string `json:"streamId"`
	// Attempt is the number of the attempt this event reports (1-based); 0
	// for a job refused before any attempt.
	Attempt int `json:"attempt"`
	// StatusCode is the receiver's HTTP status; 0 when there was no answer.
	StatusCode int `json:"statusCode,omitempty"`
	// DurationMs is how long the attempt took.
	DurationMs float64 `json:"durationMs"`
	// AttemptedAt is when the attempt started.
	AttemptedAt Time `json:"attemptedAt"`
	// NextAttemptAt is when the next attempt is due (Status retrying only).
	NextAttemptAt Time `json:"nextAttemptAt"`
	// Response is the start of the receiver's response body, capped.
	Response string `json:"response,omitempty"`
	// MetaData is the job's metaData, as the producer wrote it.
	MetaData json.RawMessage `json:"metaData,omitempty"`
	// Job is the job document as it came from the stream, so that the job
	// can be shown and enqueued again. It is a string because a job that
	// could not be parsed is kept too.
	Job string `json:"job,omitempty"`
}

// Time is a timestamp in status events. It is written as RFC 3339 with
// nanoseconds, or "" when unset (as the older engine wrote an undelivered
// job's delivered time). It reads RFC 3339, Go's time.Time.String() form
// (which the older engine wrote, monotonic clock suffix included) and "".
type Time struct{ time.Time }

// MarshalJSON writes RFC 3339 with nanoseconds in UTC, or "" for the zero
// time. (It must be MarshalJSON: the embedded time.Time's would win over a
// MarshalText.)
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte(`""`), nil
	}
	b := make([]byte, 0, len(time.RFC3339Nano)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// UnmarshalJSON reads every form described on Time; null reads as zero.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp %s is not a string", b)
	}
	parsed, err := ParseTime(s)
	if err != nil {
		return err
	}
	t.Time = parsed
	return nil
}

// goStringLayout is time.Time.String()'s layout without the monotonic part.
const goStringLayout = "2006-01-02 15:04:05.999999999 -0700 MST"

// goOffsetLayout is goStringLayout without the zone name, for the names
// that the MST element does not read (see ParseTime).
const goOffsetLayout = "2006-01-02 15:04:05.999999999 -0700"

// ParseTime reads a timestamp in RFC 3339 or in Go's time.Time.String()
// form; "" is the zero time.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return inRange(s, t)
	}
	// time.Time.String() appends " m=+519.05" when the time carries a
	// monotonic clock reading; it means nothing outside the process.
	if i := strings.Index(s, " m="); i >= 0 {
		s = s[:i]
	}
	t, err := time.Parse(goStringLayout, s)
	if err != nil {
		// A zone without a letter abbreviation is named by its offset:
		// Asia/Tehran writes "+0330 +0330", Asia/Kathmandu "+0545 +0545".
		// MST reads such a name only as whole hours ("+04"), so the name
		// is dropped when it repeats the offset, which gives the instant.
		if i := strings.LastIndexByte(s, ' '); i >= 0 && strings.HasSuffix(s[:i], s[i:]) {
			t, err = time.Parse(goOffsetLayout, s[:i])
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q is neither RFC 3339 nor Go's time format", s)
	}
	return inRange(s, t)
}

// inRange refuses times whose UTC year has more or fewer than four
// digits: they could not be written back as RFC 3339, so a stored event
// carrying one could never be read again.
func inRange(s string, t time.Time) (time.Time, error) {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return time.Time{}, fmt.Errorf("timestamp %q is outside the years 0000 to 9999 in UTC", s)
	}
	return t, nil
}
