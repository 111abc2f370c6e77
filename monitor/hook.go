package monitor

import (
	"reflect"
	"slices"
	"time"

	"github.com/sendhooks/sendhooks"
)

// Hook is the document of one webhook job in the hooks collection, built
// up from the job's status events. It is also the API's webhook object.
type Hook struct {
	// ID is the jobs-stream id the engine reports (streamId), or the
	// producer's webhookId for the old engine's events.
	ID string `bson:"_id" json:"_id"`
	// IDCopy repeats ID under the name the old API used.
	IDCopy string `bson:"id" json:"id"`
	// StreamID is the jobs-stream id the job first arrived under, when known.
	StreamID    string           `bson:"streamId,omitempty" json:"streamId,omitempty"`
	URL         string           `bson:"url" json:"url"`
	Status      sendhooks.Status `bson:"status" json:"status"`
	Created     *time.Time       `bson:"created" json:"created"`
	Delivered   *time.Time       `bson:"delivered" json:"delivered"`
	Error       string           `bson:"error" json:"error"`
	ExternalID  string           `bson:"externalId" json:"externalId"`
	MessageID   string           `bson:"messageId" json:"messageId"`
	PayloadSize int              `bson:"payloadSize" json:"payloadSize"`
	// NumberOfTries is how many attempts were made.
	NumberOfTries int       `bson:"numberOfTries" json:"numberOfTries"`
	Attempts      []Attempt `bson:"attempts" json:"attempts"`
	// MetaData is the producer's metaData, kept as its JSON text so that
	// any key a producer chooses can be stored.
	MetaData RawJSON `bson:"metaData,omitempty" json:"metaData,omitempty"`
	// Job is the job document the engine read, kept for retries. The API
	// shows it without its secretHash.
	Job       JobJSON   `bson:"job,omitempty" json:"job,omitempty"`
	UpdatedAt time.Time `bson:"updatedAt" json:"updatedAt"`
	// RetryQueued is the attempt queued by hand and not yet reported by
	// the engine, and RetryQueuedAt when it was queued (Store.MarkRetry).
	RetryQueued   int        `bson:"retryQueued,omitempty" json:"retryQueued,omitempty"`
	RetryQueuedAt *time.Time `bson:"retryQueuedAt,omitempty" json:"retryQueuedAt,omitempty"`

	// StatusAttempt is the attempt of the event the status was taken
	// from; with Status it ranks that event (see rank.outranks).
	StatusAttempt int `bson:"statusAttempt" json:"-"`
	// Version counts the writes of the document, for stores that write it
	// with optimistic concurrency.
	Version int64 `bson:"version" json:"-"`
}

// Attempt is one delivery attempt of a job.
type Attempt struct {
	Number        int              `bson:"number" json:"number"`
	Status        sendhooks.Status `bson:"status" json:"status"`
	Time          *time.Time       `bson:"time" json:"time"`
	StatusCode    int              `bson:"statusCode" json:"statusCode"`
	DurationMs    float64          `bson:"durationMs" json:"durationMs"`
	Error         string           `bson:"error" json:"error"`
	Response      string           `bson:"response" json:"response"`
	NextAttemptAt *time.Time       `bson:"nextAttemptAt" json:"nextAttemptAt"`
}

// AttemptsMade is the number of attempts known to have been made.
func (h *Hook) AttemptsMade() int {
	n := h.NumberOfTries
	for _, a := range h.Attempts {
		n = max(n, a.Number)
	}
	return n
}

// rank orders the events of one job for the document's status: the higher
// attempt wins; on a tie a final status beats a step on the way, success
// beats failure, and other statuses go by name, so that every order of the
// same events ends alike.
type rank struct {
	attempt int
	status  sendhooks.Status
}

func (r rank) outranks(o rank) bool {
	if r.attempt != o.attempt {
		return r.attempt > o.attempt
	}
	if r.status.Final() != o.status.Final() {
		return r.status.Final()
	}
	if (r.status == sendhooks.StatusSuccess) != (o.status == sendhooks.StatusSuccess) {
		return r.status == sendhooks.StatusSuccess
	}
	return r.status > o.status
}

func eventRank(ev sendhooks.StatusEvent) rank {
	return rank{attempt: eventAttempt(ev), status: ev.Status}
}

// eventAttempt is the attempt an event reports. The old engine sent no
// attempt number, only numberOfTries, which it left at 0 on a first-try
// success.
func eventAttempt(ev sendhooks.StatusEvent) int {
	if ev.Attempt > 0 || ev.StreamID != "" {
		return ev.Attempt
	}
	if ev.Status == sendhooks.StatusSuccess {
		return max(ev.NumberOfTries, 1)
	}
	return ev.NumberOfTries
}

// Apply merges one event into the hook and reports whether anything
// changed. Applying the same events in any order, any number of times,
// gives the same hook.
func (h *Hook) Apply(ev Event) bool {
	before := *h
	before.Attempts = slices.Clone(h.Attempts)
	if h.ID == "" {
		h.ID, h.IDCopy = ev.Key(), ev.Key()
		h.StatusAttempt = eventAttempt(ev.StatusEvent) - 1 // so that the first event sets the status
	}
	setIfEmpty(&h.StreamID, ev.StreamID)
	setIfEmpty(&h.URL, ev.URL)
	setIfEmpty(&h.ExternalID, ev.WebhookID)
	setIfEmpty(&h.MessageID, ev.MessageID)
	setIfEmpty((*string)(&h.MetaData), string(ev.MetaData))
	setIfEmpty((*string)(&h.Job), ev.Job)
	h.PayloadSize = max(h.PayloadSize, ev.PayloadSize)
	if c := ev.Created.Time; !c.IsZero() && (h.Created == nil || c.Before(*h.Created)) {
		h.Created = utc(c)
	}
	attempt := eventAttempt(ev.StatusEvent)
	h.NumberOfTries = max(h.NumberOfTries, ev.NumberOfTries, attempt)
	if h.RetryQueued > 0 && attempt >= h.RetryQueued {
		h.RetryQueued, h.RetryQueuedAt = 0, nil // the engine took the retry up
	}

	r := eventRank(ev.StatusEvent)
	if r.outranks(rank{attempt: h.StatusAttempt, status: h.Status}) {
		h.Status, h.StatusAttempt = ev.Status, r.attempt
		h.Error = ev.DeliveryError
		h.Delivered = nil
		if ev.Status == sendhooks.StatusSuccess && !ev.Delivered.IsZero() {
			h.Delivered = utc(ev.Delivered.Time)
		}
	}
	if h.Attempts == nil {
		h.Attempts = []Attempt{} // a list, empty, in MongoDB and the API
	}
	if ev.Attempt > 0 {
		h.mergeAttempt(ev.StatusEvent)
	}
	// The fields change by being set anew, never in place (times are
	// replaced, not edited), so comparing with the copy sees every change.
	return !reflect.DeepEqual(before, *h)
}

// mergeAttempt records the attempt an event reports, keeping the attempts
// sorted by number. Of two reports of one attempt the higher ranking stays.
func (h *Hook) mergeAttempt(ev sendhooks.StatusEvent) {
	a := Attempt{
		Number:        ev.Attempt,
		Status:        ev.Status,
		Time:          utc(ev.AttemptedAt.Time),
		StatusCode:    ev.StatusCode,
		DurationMs:    ev.DurationMs,
		Error:         ev.DeliveryError,
		Response:      ev.Response,
		NextAttemptAt: utc(ev.NextAttemptAt.Time),
	}
	i, found := slices.BinarySearchFunc(h.Attempts, a.Number, func(x Attempt, n int) int { return x.Number - n })
	if !found {
		h.Attempts = slices.Insert(h.Attempts, i, a)
		return
	}
	old := h.Attempts[i]
	if eventRank(ev).outranks(rank{attempt: old.Number, status: old.Status}) {
		h.Attempts[i] = a
	}
}

func setIfEmpty(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// utc is t in UTC at the millisecond precision MongoDB stores, or nil for
// the zero time.
func utc(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Millisecond)
	return &t
}

// CanMarkRetry reports whether a retry of attempt may be marked on h at
// at: h is not retrying, and carries no retry mark younger than
// RetryMarkTTL.
func (h *Hook) CanMarkRetry(at time.Time) bool {
	if h.Status == sendhooks.StatusRetrying {
		return false
	}
	return h.RetryQueued == 0 || h.RetryQueuedAt == nil || !at.Before(h.RetryQueuedAt.Add(RetryMarkTTL))
}
