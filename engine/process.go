package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/sendhooks/sendhooks"
)

// process delivers one job the scheduler handed to a worker, to its next
// durable state: delivered, scheduled for another attempt, or failed; sig
// is the calling worker's signer. It ends the job's time in flight for its
// host group as soon as the attempt ends. It reports whether it handed an
// outcome to the recorder, which then settles the job's entry; when it did
// not (cut short by the shutdown deadline), the entry stays pending and
// the caller settles it.
func (e *Engine) process(ctx context.Context, j *heldJob, sig *signer) bool {
	t := j.task
	res := e.attempt(ctx, j, sig)
	if res.aborted {
		return false // cut short by the shutdown deadline: the entry stays pending
	}
	e.metrics.observeAttempt(res)
	// Handing the outcome over is the last step: a panic before it has
	// handed nothing to the recorder, which work relies on.
	e.finish(t, e.decide(t, res))
	return true
}

// attempt makes the job's HTTP attempt. Its time in flight, in the gauge
// and in its host group, ends with the attempt even when the attempt
// panics: a group still counting a request in flight would keep one of
// its workers from it for good.
func (e *Engine) attempt(ctx context.Context, j *heldJob, sig *signer) (res attemptResult) {
	e.metrics.inFlight.Inc()
	defer func() {
		e.metrics.inFlight.Dec()
		e.sched.done(j.group, res.duration)
	}()
	if e.faultHook != nil {
		e.faultHook(j.task, nil)
	}
	return e.http.deliver(ctx, j.task, sig)
}

// work takes one job the scheduler handed a worker through process, and
// settles its entry when process handed no outcome to the recorder. A
// panic while it does so (a bug that some job's data reaches) is
// recovered here and ends that job only (endPanicked). Left alone it would
// end the engine: the other jobs in flight would be delivered again, and
// the panicking job, read first from the pending list after a restart,
// would end the engine again, and again.
func (e *Engine) work(ctx context.Context, j *heldJob, sig *signer) {
	defer func() {
		if v := recover(); v != nil {
			*sig = signer{} // the panic may have left it half-way through a change of key
			e.endPanicked(j.task, v, debug.Stack())
		}
	}()
	if !e.process(ctx, j, sig) {
		e.settle(j.task.entryID)
	}
}

// endPanicked ends a job whose handling panicked with v, stack being where:
// it is logged and counted, and ends as a job out of attempts does,
// failed and in the dead-letter stream, with the panic as its reason. It
// is not retried, since it would most likely panic again; the dead letter
// keeps its document for a replay once the bug is fixed.
//
// Its outcome is written, and its entry acknowledged, once, like any
// other (recordScript). Should that write fail for good (Redis away for
// half the visibility timeout, see rerecord), the entry stays pending, is
// claimed again, panics again and ends here again: what bounds that loop
// is Redis, not the job. It lasts only while no outcome can be written,
// which holds every job back alike, at one round per visibility timeout,
// and the engine keeps running through it; the first write that succeeds
// ends the job.
func (e *Engine) endPanicked(t task, v any, stack []byte) {
	value := fmt.Sprint(v)
	reason := "internal error while delivering: " + value
	e.metrics.panics.Inc()
	e.metrics.failed.Inc()
	e.log.Error("panic while delivering a job; the job ends failed and goes to the dead-letter stream",
		"entry", t.entryID, "streamId", t.origin, "attempt", t.attempt, "panic", value, "stack", string(stack))
	e.fail(t, reason, true)
}

// fail ends a job with a final failed status event giving reason. A job
// whose handling or reading panicked (the engine's fault, not the job's)
// is also put in the dead-letter stream, which keeps its document for a
// replay, and its event is numbered with the attempt it ended, like a
// failed attempt's, so that it outranks the events of earlier attempts
// in the monitor; a bad job's event is not.
//
// Making or encoding the event from the job's data may be what panicked
// in the first place: should it panic, the event carries only what the
// engine itself made, rather than panic on every claim of the entry, or
// end the engine on the read path, which has no recover of its own.
func (e *Engine) fail(t task, reason string, panicked bool) {
	attempt, tries := 0, t.attempt-1
	if panicked {
		attempt, tries = t.attempt, t.attempt
	}
	defer func() {
		if again := recover(); again != nil {
			e.metrics.panics.Inc()
			e.log.Error("panic while recording a job's end; its status event is recorded without the job's data",
				"entry", t.entryID, "streamId", t.origin, "panic", fmt.Sprint(again), "stack", string(debug.Stack()))
			e.finish(t, outcome{event: &sendhooks.StatusEvent{
				Status: sendhooks.StatusFailed, DeliveryError: reason, StreamID: t.origin,
				Created: sendhooks.Time{Time: t.created()}, Attempt: attempt, NumberOfTries: tries,
			}, dead: panicked})
		}
	}()
	ev := t.event(sendhooks.StatusFailed, reason, nil)
	ev.Attempt, ev.NumberOfTries = attempt, tries
	e.finish(t, outcome{event: ev, dead: panicked})
}

// refuse ends a job that can never be delivered, before any attempt; one
// whose reading panicked goes to the dead-letter stream too (fail).
func (e *Engine) refuse(t task) {
	e.metrics.badJobs.Inc()
	if t.panicked != nil {
		e.metrics.panics.Inc()
		e.log.Error("panic while reading a job; the job ends failed and goes to the dead-letter stream", "entry", t.entryID,
			"streamId", t.origin, "attempt", t.attempt, "reason", t.bad, "stack", string(t.panicked))
	} else {
		e.log.Warn("bad job refused", "entry", t.entryID, "reason", t.bad)
	}
	e.fail(t, t.bad.Error(), t.panicked != nil)
}

// decide turns an attempt's result into the outcome to record.
func (e *Engine) decide(t task, res attemptResult) outcome {
	switch {
	case res.err == nil:
		e.metrics.succeeded.Inc()
		return outcome{event: t.event(sendhooks.StatusSuccess, "", &res)}
	case !res.permanent && t.attemptsLeft(e.cfg.RetrySchedule):
		wait := jitter(t.nextWait(e.cfg.RetrySchedule))
		if res.retryAfter > 0 {
			wait = res.retryAfter // the receiver said when; trust it (bounded)
		}
		due := time.Now().Add(wait)
		ev := t.event(sendhooks.StatusRetrying, res.err.Error(), &res)
		ev.NextAttemptAt = sendhooks.Time{Time: due}
		e.logFailure(t, slog.LevelInfo, "delivery attempt failed, retry scheduled", res.err, "nextAttemptAt", due)
		e.metrics.retries.Inc()
		next := retryEntry{origin: t.origin, attempt: t.attempt + 1, runStart: t.runStart, raw: t.raw}
		return outcome{event: ev, retry: &next, due: due}
	default:
		e.logFailure(t, slog.LevelWarn, "delivery failed, no attempt left", res.err)
		e.metrics.failed.Inc()
		return outcome{event: t.event(sendhooks.StatusFailed, res.err.Error(), &res), dead: true}
	}
}

// logFailure writes the one line a failed attempt gets, with the job's ids.
func (e *Engine) logFailure(t task, level slog.Level, msg string, err error, more ...any) {
	attrs := append([]any{"webhookId", t.job.WebhookID, "streamId", t.origin,
		"attempt", t.attempt, "url", t.job.URL, "error", err}, more...)
	e.log.Log(context.Background(), level, msg, attrs...)
}

// finish hands an outcome to the recorder, which writes it and
// acknowledges the entry in a batch with others, and then calls recorded.
func (e *Engine) finish(t task, o outcome) {
	r := entryOutcome{task: t, outcome: o}
	if o.event != nil {
		if e.faultHook != nil {
			e.faultHook(t, o.event)
		}
		r.event = o.event.AppendJSON(make([]byte, 0, 512+len(o.event.Job)+len(o.event.Response)))
	}
	e.recorder.submit(r)
}

// recorded settles an entry once its outcome's batch was written. A batch
// that failed is written again outcome by outcome, each on its own, so
// that one bad batch cannot hold the others; see rerecord.
func (e *Engine) recorded(ctx context.Context, r entryOutcome, err error) {
	if err == nil {
		e.redisOK.Store(true)
		e.settle(r.task.entryID)
		return
	}
	e.rerecording.Go(func() {
		e.rerecord(ctx, r, err)
		e.settle(r.task.entryID)
	})
}

// rerecord writes an outcome whose first write failed, retrying while
// Redis is away. If it cannot (Redis gone for longer than half the
// visibility timeout, or the engine is past its shutdown deadline), the
// entry stays pending and is claimed again later: delivered twice rather
// than lost.
func (e *Engine) rerecord(ctx context.Context, r entryOutcome, err error) {
	giveUp := time.Now().Add(e.cfg.VisibilityTimeout / 2)
	var b backoff
	for err != nil {
		e.redisDown("record outcome", err)
		if time.Now().After(giveUp) || !b.wait(ctx) {
			e.log.Error("outcome not recorded; the job stays pending and will be delivered again",
				"entry", r.task.entryID, "streamId", r.task.origin, "error", err)
			return
		}
		// Once the outcome is known, writing it down is worth finishing even
		// if a stop was asked for: only the give-up time bounds it.
		writeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = record(writeCtx, e.rdb, e.keys, []entryOutcome{r})
		cancel()
	}
	e.redisOK.Store(true)
}

// event builds the status event for the task's current attempt; res is
// nil for a job refused before any attempt.
func (t task) event(status sendhooks.Status, deliveryError string, res *attemptResult) *sendhooks.StatusEvent {
	ev := &sendhooks.StatusEvent{
		WebhookID:     t.job.WebhookID,
		Status:        status,
		DeliveryError: deliveryError,
		URL:           t.job.URL,
		Created:       sendhooks.Time{Time: t.created()},
		PayloadSize:   len(t.job.Body()),
		NumberOfTries: t.attempt - 1,
		MessageID:     t.job.MessageID,
		StreamID:      t.origin,
		MetaData:      t.job.MetaData,
		Job:           t.raw,
	}
	if res == nil {
		return ev
	}
	ev.NumberOfTries = t.attempt
	ev.Attempt = t.attempt
	ev.StatusCode = res.statusCode
	ev.DurationMs = float64(res.duration.Microseconds()) / 1000
	ev.AttemptedAt = sendhooks.Time{Time: res.started}
	ev.Response = res.response
	if status == sendhooks.StatusSuccess {
		ev.Delivered = sendhooks.Time{Time: res.started.Add(res.duration)}
	}
	return ev
}

// jitter spreads a wait over ±10% so that jobs failed together do not all
// come back in the same instant.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	spread := int64(d / 5)
	if spread == 0 {
		return d
	}
	return d - d/10 + time.Duration(rand.Int64N(spread))
}
