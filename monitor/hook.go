package monitor

import (
	"cmp"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sendhooks/sendhooks"
)

// Hook is the document of one webhook job in the hooks collection, built
// up from the job's status events. It is also the API's webhook object.
type Hook struct {
	// ID is the jobs-stream id the engine reports (streamId); for the old
	// engine's events the producer's webhookId, or the event's
	// status-stream entry id when it has none (Event.Key).
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
	// StatusEntry and StatusAt rank an unnumbered event (the old
	// engine's) the status was taken from: its status-stream entry id and
	// its time. Both are empty for a status from a numbered event.
	StatusEntry string     `bson:"statusEntry,omitempty" json:"-"`
	StatusAt    *time.Time `bson:"statusAt,omitempty" json:"-"`
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

// The status of a hook is the status of its highest-ranking event (see
// rank). Events come in two kinds:
//
//   - Numbered: the new engine's, which carry an attempt number and a
//     streamId. They all belong to one job, and the higher attempt wins.
//   - Unnumbered: the old engine's, one event per job, with neither. All
//     the jobs a producer sent under one webhookId share its hook, so the
//     newest event wins: the one later in the status stream (entry ids
//     grow with every entry, whichever engine wrote it and whatever its
//     clock said). Only events read without an entry id, or the same
//     entry read twice, tie on it: the event's own time (delivered, else
//     created) decides then.
//
// A numbered event outranks every unnumbered one (a hook has both only
// when a producer's webhookId equals a jobs-stream id). Remaining ties go
// to a final status over a step on the way, success over failure, then
// the status by name, so that every order of the same events ends alike.
type rank struct {
	numbered bool
	attempt  int       // numbered
	entry    string    // unnumbered: the status-stream entry id
	at       time.Time // unnumbered: the event's time, at the stored precision
	status   sendhooks.Status
}

func (r rank) outranks(o rank) bool {
	if r.numbered != o.numbered {
		return r.numbered
	}
	if r.numbered && r.attempt != o.attempt {
		return r.attempt > o.attempt
	}
	if !r.numbered {
		if c := compareEntryIDs(r.entry, o.entry); c != 0 {
			return c > 0
		}
		if !r.at.Equal(o.at) {
			return r.at.After(o.at)
		}
	}
	if r.status.Final() != o.status.Final() {
		return r.status.Final()
	}
	if (r.status == sendhooks.StatusSuccess) != (o.status == sendhooks.StatusSuccess) {
		return r.status == sendhooks.StatusSuccess
	}
	return r.status > o.status
}

// numbered reports whether an event carries an attempt number: the new
// engine's events always have a streamId.
func numbered(ev sendhooks.StatusEvent) bool {
	return ev.Attempt > 0 || ev.StreamID != ""
}

func eventRank(e Event) rank {
	if numbered(e.StatusEvent) {
		return rank{numbered: true, attempt: e.Attempt, status: e.Status}
	}
	return rank{entry: e.EntryID, at: ptrTime(utc(eventTime(e.StatusEvent))), status: e.Status}
}

// statusRank is the rank of the event the hook's status was taken from.
// A hook's status is numbered once a numbered event came in, since those
// outrank the others; each numbered event sets the streamId or adds an
// attempt, so a hook without either has seen unnumbered events only. (A
// hook stored before the entry was kept has none: any later entry wins.)
func (h *Hook) statusRank() rank {
	if h.StreamID != "" || len(h.Attempts) > 0 {
		return rank{numbered: true, attempt: h.StatusAttempt, status: h.Status}
	}
	return rank{entry: h.StatusEntry, at: ptrTime(h.StatusAt), status: h.Status}
}

// eventTime is when an unnumbered event happened, as far as it says.
func eventTime(ev sendhooks.StatusEvent) time.Time {
	if !ev.Delivered.IsZero() {
		return ev.Delivered.Time
	}
	return ev.Created.Time
}

func ptrTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// compareEntryIDs orders stream entry ids ("<ms>-<seq>") as Redis does,
// by number; "" and ids of another shape come first, by text.
func compareEntryIDs(a, b string) int {
	am, as, aok := parseEntryID(a)
	bm, bs, bok := parseEntryID(b)
	if aok != bok {
		if aok {
			return 1
		}
		return -1
	}
	return cmp.Or(cmp.Compare(am, bm), cmp.Compare(as, bs), strings.Compare(a, b))
}

func parseEntryID(id string) (ms, seq uint64, ok bool) {
	m, s, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	var err1, err2 error
	ms, err1 = strconv.ParseUint(m, 10, 64)
	seq, err2 = strconv.ParseUint(s, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

// eventAttempt is the number of attempts an event reports. The old engine
// sent no attempt number, only numberOfTries, which it left at 0 on a
// first-try success.
func eventAttempt(ev sendhooks.StatusEvent) int {
	if numbered(ev) {
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
//
// The status, error, delivered time and url (when it names one) are
// those of the highest-ranking event (see rank), and so is the number of
// tries for a hook of unnumbered events, each of which is a whole job of
// the old engine; for numbered events it is the most any reported.
// Created is the earliest, payloadSize the largest, the ids, meta data and
// job the first known (of the numbered events, when the hook has both
// kinds).
func (h *Hook) Apply(ev Event) bool {
	if h.Attempts == nil {
		// A list, empty, in MongoDB and the API. Set before the copy: a
		// caller's copy of a stored hook may hold nil for its empty list,
		// which is no change to write.
		h.Attempts = []Attempt{}
	}
	before := *h
	before.Attempts = slices.Clone(h.Attempts)
	fresh := h.Status == ""
	current := h.statusRank()
	if h.ID == "" {
		h.ID, h.IDCopy = ev.Key(), ev.Key()
	}
	switch {
	case numbered(ev.StatusEvent) && !fresh && !current.numbered:
		// The first numbered event outranks all before it: what they
		// named gives way, as it would had this event come first.
		h.URL, h.ExternalID, h.MessageID, h.MetaData, h.Job = "", "", "", "", ""
	case !numbered(ev.StatusEvent) && current.numbered:
		ev.URL, ev.WebhookID, ev.MessageID, ev.MetaData, ev.Job = "", "", "", nil, ""
	}
	setIfEmpty(&h.StreamID, ev.StreamID)
	setIfEmpty(&h.URL, ev.URL) // until an event that outranks it names one
	setIfEmpty(&h.ExternalID, ev.WebhookID)
	setIfEmpty(&h.MessageID, ev.MessageID)
	setIfEmpty((*string)(&h.MetaData), string(ev.MetaData))
	setIfEmpty((*string)(&h.Job), ev.Job)
	h.PayloadSize = max(h.PayloadSize, ev.PayloadSize)
	if c := ev.Created.Time; !c.IsZero() && (h.Created == nil || c.Before(*h.Created)) {
		h.Created = utc(c)
	}
	attempt := eventAttempt(ev.StatusEvent)
	if numbered(ev.StatusEvent) {
		tries := h.NumberOfTries
		if !current.numbered {
			tries = 0 // the unnumbered events' count gives way with their status
		}
		h.NumberOfTries = max(tries, ev.NumberOfTries, attempt)
		if h.RetryQueued > 0 && attempt >= h.RetryQueued {
			h.RetryQueued, h.RetryQueuedAt = 0, nil // the engine took the retry up
		}
	}

	r := eventRank(ev)
	if fresh || r.outranks(current) {
		h.Status, h.StatusAttempt = ev.Status, attempt
		h.StatusEntry, h.StatusAt = "", nil
		if !r.numbered {
			h.StatusEntry, h.StatusAt = ev.EntryID, utc(r.at)
			h.NumberOfTries = attempt
		}
		h.Error = ev.DeliveryError
		h.Delivered = nil
		if ev.Status == sendhooks.StatusSuccess && !ev.Delivered.IsZero() {
			h.Delivered = utc(ev.Delivered.Time)
		}
		if ev.URL != "" {
			h.URL = ev.URL
		}
	}
	if ev.Attempt > 0 {
		h.mergeAttempt(ev)
	}
	// The fields change by being set anew, never in place (times are
	// replaced, not edited), so comparing with the copy sees every change.
	return !reflect.DeepEqual(before, *h)
}

// mergeAttempt records the attempt an event reports, keeping the attempts
// sorted by number. Of two reports of one attempt the higher ranking stays.
func (h *Hook) mergeAttempt(e Event) {
	ev := e.StatusEvent
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
	if eventRank(e).outranks(rank{numbered: true, attempt: old.Number, status: old.Status}) {
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
