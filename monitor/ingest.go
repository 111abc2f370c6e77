package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// Ingester tails the status stream through a consumer group into the store.
type Ingester struct {
	rdb      *redis.Client
	store    Store
	metrics  *Metrics
	log      *slog.Logger
	stream   string
	group    string
	consumer string

	// BatchSize is how many events one read returns at most.
	BatchSize int64
	// Block is how long one read waits for new events.
	Block time.Duration
	// ClaimIdle is how long another consumer's event stays pending
	// before this one takes it over (that consumer is taken for dead).
	ClaimIdle time.Duration
	// ClaimEvery is how often the pending events of others are looked at.
	ClaimEvery time.Duration
	// WriteTimeout bounds one batch write, which a shutdown lets finish.
	WriteTimeout time.Duration
	// Backoff is the first wait after a failure; it doubles up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
}

// DefaultBatchSize is how many events one read takes at most. A large
// batch is one SQLite transaction that writes each index page it touches
// once, and one round trip to Redis: at 4,096 events ingestion spent 60%
// of the CPU per event it spent at 512 (sendhooks-bench -only monitor).
const DefaultBatchSize = 4096

// NewIngester reads stream as consumer of group into store.
func NewIngester(rdb *redis.Client, store Store, metrics *Metrics, log *slog.Logger, stream, group, consumer string) *Ingester {
	return &Ingester{
		rdb: rdb, store: store, metrics: metrics, log: log,
		stream: stream, group: group, consumer: consumer,
		BatchSize:    DefaultBatchSize,
		Block:        2 * time.Second,
		ClaimIdle:    time.Minute,
		ClaimEvery:   30 * time.Second,
		WriteTimeout: 30 * time.Second,
		Backoff:      100 * time.Millisecond,
		MaxBackoff:   5 * time.Second,
	}
}

// Run ingests until ctx is done, then finishes the batch in hand and
// returns. Failures of Redis or MongoDB are logged and retried with
// backoff; events are acknowledged only once stored, so none is lost.
func (in *Ingester) Run(ctx context.Context) error {
	r := &reader{Ingester: in, pendingFirst: true}
	wait := in.Backoff
	for ctx.Err() == nil {
		if err := r.step(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			in.log.Warn("status stream ingestion failed; retrying", "err", err, "retryIn", wait)
			r.pendingFirst, r.groupReady = true, false
			sleep(ctx, wait)
			wait = min(2*wait, in.MaxBackoff)
			continue
		}
		wait = in.Backoff
	}
	return nil
}

// reader is the state of one Run.
type reader struct {
	*Ingester
	groupReady   bool
	pendingFirst bool // this consumer's pending events come before new ones
	lastClaim    time.Time
	lastGauges   time.Time
}

// step reads and stores one batch.
func (r *reader) step(ctx context.Context) error {
	if !r.groupReady {
		if err := r.ensureGroup(ctx); err != nil {
			return err
		}
		r.groupReady = true
	}
	if time.Since(r.lastGauges) > time.Second {
		r.updateGauges(ctx)
		r.lastGauges = time.Now()
	}
	switch {
	case r.pendingFirst:
		msgs, err := r.read(ctx, "0", -1)
		if err != nil {
			return err
		}
		r.pendingFirst = len(msgs) > 0
		return r.process(ctx, msgs)
	case time.Since(r.lastClaim) > r.ClaimEvery:
		if err := r.claim(ctx); err != nil {
			return err
		}
		r.lastClaim = time.Now()
		return nil
	default:
		msgs, err := r.read(ctx, ">", r.Block)
		if err != nil {
			return err
		}
		return r.process(ctx, msgs)
	}
}

// ensureGroup creates the consumer group, and the stream, when missing.
func (r *reader) ensureGroup(ctx context.Context) error {
	err := r.rdb.XGroupCreateMkStream(ctx, r.stream, r.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %q on %q: %w", r.group, r.stream, err)
	}
	return nil
}

// read returns this consumer's pending events (id "0") or new ones (">").
func (r *reader) read(ctx context.Context, id string, block time.Duration) ([]redis.XMessage, error) {
	streams, err := r.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: r.group, Consumer: r.consumer,
		Streams: []string{r.stream, id},
		Count:   r.BatchSize, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %q as %s/%s: %w", r.stream, r.group, r.consumer, err)
	}
	var msgs []redis.XMessage
	for _, s := range streams {
		msgs = append(msgs, s.Messages...)
	}
	return msgs, nil
}

// claim takes over and stores the events that other consumers read but
// did not acknowledge for ClaimIdle.
func (r *reader) claim(ctx context.Context) error {
	start := "0-0"
	for {
		msgs, next, err := r.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: r.stream, Group: r.group, Consumer: r.consumer,
			MinIdle: r.ClaimIdle, Start: start, Count: r.BatchSize,
		}).Result()
		if err != nil {
			return fmt.Errorf("claim stale events of %q: %w", r.stream, err)
		}
		if err := r.process(ctx, msgs); err != nil {
			return err
		}
		if next == "0-0" || next == "" {
			return nil
		}
		start = next
	}
}

// process stores the events of msgs and acknowledges them all. An event
// that does not parse, and one the store refuses for good, is set aside in
// the rejected stream with the reason, logged, counted and acknowledged:
// kept for a person to look at (a timestamp in a form not read yet can be
// fixed and the event replayed), never blocking the stream. A write that
// fails otherwise is retried until it succeeds or ctx is done.
func (r *reader) process(ctx context.Context, msgs []redis.XMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]string, len(msgs))
	events := make([]Event, 0, len(msgs))
	var unparsed []rejection
	for i, m := range msgs {
		ids[i] = m.ID
		ev, err := parseEntry(m)
		if err != nil {
			unparsed = append(unparsed, rejection{m.ID, fmt.Errorf("the event does not parse: %w", err)})
			continue
		}
		events = append(events, ev)
	}
	refused, err := r.write(ctx, events)
	if err != nil {
		return err
	}
	if err := r.setAside(ctx, msgs, append(unparsed, refused...)); err != nil {
		return err
	}
	// Acknowledge even when shutting down: the events are stored or set aside.
	if err := r.rdb.XAck(context.WithoutCancel(ctx), r.stream, r.group, ids...).Err(); err != nil {
		return fmt.Errorf("acknowledge %d events: %w", len(ids), err)
	}
	for _, rej := range unparsed {
		r.metrics.parseFailures.Inc()
		r.log.Warn("status event set aside: it does not parse", "stream", r.stream, "entryId", rej.entryID,
			"setAsideIn", sendhooks.RejectedStream(r.stream), "err", rej.err)
	}
	for _, rej := range refused {
		r.metrics.rejected.Inc()
		r.log.Warn("status event set aside: the store refuses it", "stream", r.stream, "entryId", rej.entryID,
			"setAsideIn", sendhooks.RejectedStream(r.stream), "err", rej.err)
	}
	r.metrics.ingested.Add(float64(len(events) - len(refused)))
	return nil
}

// rejection is an event that did not parse or that the store refused for
// good, and why.
type rejection struct {
	entryID string
	err     error
}

// write stores the events, retrying passing faults with backoff. A batch
// the store refuses for good is split in halves, and the halves written,
// until the events it refuses are found: those are returned, the others
// stored. A write under way when ctx ends is finished (within
// WriteTimeout); the next is not started.
func (r *reader) write(ctx context.Context, events []Event) ([]rejection, error) {
	if len(events) == 0 {
		return nil, nil
	}
	wait := r.Backoff
	for {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.WriteTimeout)
		err := r.store.Apply(wctx, events)
		cancel()
		switch {
		case err == nil:
			return nil, nil
		case errors.Is(err, ErrRejected) && len(events) == 1:
			return []rejection{{events[0].EntryID, err}}, nil
		case errors.Is(err, ErrRejected):
			half := len(events) / 2
			a, err := r.write(ctx, events[:half])
			if err != nil {
				return nil, err
			}
			b, err := r.write(ctx, events[half:])
			return append(a, b...), err
		}
		r.metrics.writeFailures.Inc()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("store %d events: %w", len(events), err)
		}
		r.log.Warn("storing status events failed; retrying", "events", len(events), "err", err, "retryIn", wait)
		sleep(ctx, wait)
		wait = min(2*wait, r.MaxBackoff)
	}
}

// setAside copies each rejected event, with the reason, into the rejected
// stream, so that it is kept for a person to look at while the stream
// goes on. It is written before the event is acknowledged: a crash between
// the two sets the event aside twice, never loses it.
func (r *reader) setAside(ctx context.Context, msgs []redis.XMessage, rejected []rejection) error {
	if len(rejected) == 0 {
		return nil
	}
	raw := make(map[string]any, len(msgs))
	for _, m := range msgs {
		raw[m.ID] = m.Values[sendhooks.StreamField]
	}
	pipe := r.rdb.Pipeline()
	for _, rej := range rejected {
		pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: sendhooks.RejectedStream(r.stream),
			MaxLen: maxRejected, Approx: true,
			Values: []any{sendhooks.StreamField, raw[rej.entryID], "entryId", rej.entryID, "reason", rej.err.Error()},
		})
	}
	if _, err := pipe.Exec(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("set %d rejected events aside in %s: %w", len(rejected), sendhooks.RejectedStream(r.stream), err)
	}
	return nil
}

// maxRejected caps the rejected stream: what is set aside is for a person
// to look at, and must not grow without bound under a flood of bad events.
const maxRejected = 10_000

// updateGauges reads the group's lag and pending count into the metrics.
func (r *reader) updateGauges(ctx context.Context) {
	groups, err := r.rdb.XInfoGroups(ctx, r.stream).Result()
	if err != nil {
		return // the next read reports the failure
	}
	for _, g := range groups {
		if g.Name == r.group {
			r.metrics.lag.Set(float64(max(g.Lag, 0)))
			r.metrics.pending.Set(float64(g.Pending))
		}
	}
}

// parseEntry reads the status event of a stream entry, fitted for
// storage. An event without a created time takes the time its entry was
// written, so that every hook has one to be listed and counted by.
func parseEntry(m redis.XMessage) (Event, error) {
	raw, ok := m.Values[sendhooks.StreamField].(string)
	if !ok {
		return Event{}, fmt.Errorf("the entry has no %q field", sendhooks.StreamField)
	}
	ev, err := ParseEvent([]byte(raw))
	if err != nil {
		return Event{}, err
	}
	if ev.Created.IsZero() {
		if ms, _, ok := strings.Cut(m.ID, "-"); ok {
			if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
				ev.Created.Time = time.UnixMilli(n).UTC()
			}
		}
	}
	return Event{EntryID: m.ID, StatusEvent: fitForStorage(ev)}, nil
}

// Bounds of what one event may bring into a stored hook (MongoDB caps a
// document at 16 MiB): a job larger than maxStoredJob is not kept (it
// cannot be retried from the monitor then), nor are larger meta data; long
// texts are cut.
const (
	maxStoredJob      = 4 << 20
	maxStoredMetaData = 64 << 10
	maxStoredText     = 4 << 10
)

// fitForStorage returns ev within the bounds above.
func fitForStorage(ev sendhooks.StatusEvent) sendhooks.StatusEvent {
	if len(ev.Job) > maxStoredJob {
		ev.Job = ""
	}
	if len(ev.MetaData) > maxStoredMetaData {
		ev.MetaData = nil
	}
	ev.Response = cut(ev.Response, maxStoredText)
	ev.DeliveryError = cut(ev.DeliveryError, maxStoredText)
	return ev
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
