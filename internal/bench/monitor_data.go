package bench

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/sendhooks/sendhooks"
)

// orderSet is the webhooks the monitor benchmark sends: n order webhooks
// created over the seven days before now, oldest first, to 50 receivers.
// Nine in ten end in success and one in ten in failure. Every fifth one
// succeeds at its second attempt after a retrying event, and every failed
// one fails its third attempt after two retrying events, so there are 1.4
// status events per webhook. Everything about webhook i is a function of
// i, so that the answers of the API can be checked against it.
type orderSet struct {
	n     int
	now   time.Time // created times end a minute before it
	start time.Time // created times start after it, seven days before now
	step  time.Duration
}

// Shape of the webhooks.
const (
	orderDays = 7
	receivers = 50
	// finalDelay is how many webhooks later in the stream the final event
	// of a webhook that was retried comes: about 7,000 events, more than
	// one ingest batch (4,096 events), so ingestion updates stored
	// webhooks, as it does when retries come seconds or hours apart,
	// instead of merging both events in one batch.
	finalDelay = 5000
	// retryBackoff is the time between two attempts of one webhook.
	retryBackoff = 30 * time.Second
)

func newOrderSet(n int, now time.Time) *orderSet {
	now = now.UTC().Truncate(time.Millisecond)
	span := orderDays*24*time.Hour - time.Minute
	return &orderSet{n: n, now: now, start: now.Add(-orderDays * 24 * time.Hour), step: span / time.Duration(n)}
}

func (s *orderSet) webhookID(i int) string { return "order-" + strconv.Itoa(i) }

// messageID is unique per webhook: 2654435761 is odd, so multiplying by it
// is a one-to-one map of the 32-bit numbers.
func (s *orderSet) messageID(i int) string {
	return fmt.Sprintf("msg_%08x", uint32(i)*2654435761)
}

func (s *orderSet) receiver(i int) int { return i % receivers }

// url is webhook i's URL: its receiver's, with a token of its own, as
// chat and SaaS webhooks carry one, so that every webhook's URL differs
// (the statistics' failing endpoints must cost per receiver, not per URL).
func (s *orderSet) url(i int) string {
	return fmt.Sprintf("https://receiver-%02d.example.com/webhooks/orders?token=%s", s.receiver(i), s.messageID(i)[4:])
}

// created is when webhook i's job was queued, at the millisecond
// precision the monitor stores.
func (s *orderSet) created(i int) time.Time {
	return s.start.Add(s.step * time.Duration(i+1)).Truncate(time.Millisecond)
}

// streamID is the jobs-stream id of webhook i, the monitor's id for it.
func (s *orderSet) streamID(i int) string {
	return strconv.FormatInt(s.created(i).UnixMilli(), 10) + "-0"
}

func (s *orderSet) failed(i int) bool { return i%10 == 9 }

// retries is how many retrying events come before webhook i's final one.
func (s *orderSet) retries(i int) int {
	switch {
	case s.failed(i):
		return 2
	case i%5 == 0:
		return 1
	}
	return 0
}

func (s *orderSet) finalStatus(i int) sendhooks.Status {
	if s.failed(i) {
		return sendhooks.StatusFailed
	}
	return sendhooks.StatusSuccess
}

func (s *orderSet) attemptedAt(i, attempt int) time.Time {
	return s.created(i).Add(time.Duration(attempt-1)*retryBackoff + 2*time.Millisecond)
}

func (s *orderSet) durationMs(i, attempt int) float64 {
	return 3 + float64((i*7+attempt)%200)/8
}

// delivered is when webhook i was delivered, as stored; zero when it failed.
func (s *orderSet) delivered(i int) time.Time {
	if s.failed(i) {
		return time.Time{}
	}
	a := s.retries(i) + 1
	d := time.Duration(s.durationMs(i, a) * float64(time.Millisecond))
	return s.attemptedAt(i, a).Add(d).UTC().Truncate(time.Millisecond)
}

// event is the status event of webhook i's attempt, as the engine writes
// it: retrying for the attempts before the last, then success or failed.
func (s *orderSet) event(i, attempt int) sendhooks.StatusEvent {
	id := s.webhookID(i)
	u := s.url(i)
	data := `{"order":"` + id + `","amount":"` + strconv.Itoa(10+i%990) + `.99","currency":"EUR","customer":"cus_` + strconv.Itoa(i%9973) + `","items":` + strconv.Itoa(1+i%7) + `}`
	meta := json.RawMessage(`{"tenant":"t-` + strconv.Itoa(i%7) + `","source":"checkout"}`)
	job, _ := json.Marshal(sendhooks.Job{URL: u, WebhookID: id, MessageID: s.messageID(i), Data: json.RawMessage(data),
		SecretHash: secret, MetaData: meta}) // cannot fail
	at := s.attemptedAt(i, attempt)
	ev := sendhooks.StatusEvent{
		WebhookID: id, URL: u, Created: sendhooks.Time{Time: s.created(i)}, PayloadSize: len(data),
		NumberOfTries: attempt, MessageID: s.messageID(i), StreamID: s.streamID(i), Attempt: attempt,
		DurationMs: s.durationMs(i, attempt), AttemptedAt: sendhooks.Time{Time: at}, MetaData: meta, Job: string(job),
	}
	switch {
	case attempt <= s.retries(i):
		ev.Status, ev.StatusCode = sendhooks.StatusRetrying, 503
		ev.DeliveryError = "webhook sending failed with status: 503"
		ev.Response = `{"error":"unavailable"}`
		ev.NextAttemptAt = sendhooks.Time{Time: at.Add(retryBackoff)}
	case s.failed(i):
		ev.Status, ev.StatusCode = sendhooks.StatusFailed, 500
		ev.DeliveryError = "webhook sending failed with status: 500"
		ev.Response = `{"error":"internal"}`
	default:
		ev.Status, ev.StatusCode, ev.Response = sendhooks.StatusSuccess, 200, "ok"
		ev.Delivered = sendhooks.Time{Time: at.Add(time.Duration(ev.DurationMs * float64(time.Millisecond)))}
	}
	return ev
}

// positions is how many steps the stream order takes: one per webhook,
// then finalDelay more for the last final events.
func (s *orderSet) positions() int { return s.n + finalDelay }

// at calls fn for the events written at step p of the stream order, in
// order: webhook p's retrying events, or its final event when it has none;
// then the final event of webhook p - finalDelay when that one was retried.
func (s *orderSet) at(p int, fn func(i, attempt int) error) error {
	if p < s.n {
		r := s.retries(p)
		for a := 1; a <= max(r, 1); a++ {
			if err := fn(p, a); err != nil {
				return err
			}
		}
	}
	if q := p - finalDelay; q >= 0 && q < s.n && s.retries(q) > 0 {
		return fn(q, s.retries(q)+1)
	}
	return nil
}

// eventsAt is how many events step p writes.
func (s *orderSet) eventsAt(p int) int {
	n := 0
	if p < s.n {
		n = max(s.retries(p), 1)
	}
	if q := p - finalDelay; q >= 0 && q < s.n && s.retries(q) > 0 {
		n++
	}
	return n
}

// blockEnds is the number of events written by the end of each block of
// webhooks: steps [k*block, (k+1)*block), the last block taking the steps
// after the last webhook too.
func (s *orderSet) blockEnds(block int) []int {
	var ends []int
	total := 0
	for p := range s.positions() {
		total += s.eventsAt(p)
		if (p+1)%block == 0 && p+1 < s.n {
			ends = append(ends, total)
		}
	}
	return append(ends, total)
}

// expect counts the webhooks among the newest window (the newest first)
// that match, and gives the newest of them (-1 when none does).
func (s *orderSet) expect(window int, match func(i int) bool) (count, newest int) {
	newest = -1
	for i := s.n - 1; i >= max(0, s.n-window); i-- {
		if match(i) {
			count++
			if newest < 0 {
				newest = i
			}
		}
	}
	return count, newest
}
