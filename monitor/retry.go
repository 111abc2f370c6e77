package monitor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// ErrNotRetriable says why a hook cannot be put back on the jobs stream;
// errors wrapping it carry the reason.
var ErrNotRetriable = errors.New("hook cannot be retried")

// ErrAlreadyQueued says that the hook is being retried already: by the
// engine's schedule, or by a retry queued by hand that the engine has not
// taken up yet. Retrying it again would deliver it twice.
var ErrAlreadyQueued = errors.New("hook is queued for a retry already")

// Retrier puts stored jobs back on the jobs stream, where the engine picks
// them up as further attempts of the same job. A retry is marked on the
// stored hook before it is queued (Store.MarkRetry), so that two requests
// to retry one hook (a double click, two monitors) queue it once.
type Retrier struct {
	rdb    *redis.Client
	store  Store
	stream string
	now    func() time.Time
}

// NewRetrier writes retries to the jobs stream of rdb, marking them in
// store.
func NewRetrier(rdb *redis.Client, store Store, stream string) *Retrier {
	return &Retrier{rdb: rdb, store: store, stream: stream, now: time.Now}
}

// Queued tells where a retry was written.
type Queued struct {
	ID      string `json:"id"`      // the hook's id
	Stream  string `json:"stream"`  // the jobs stream
	EntryID string `json:"entryId"` // the new jobs-stream entry
	Attempt int    `json:"attempt"` // the number the next attempt will have
}

// Retry writes the hook's job to the jobs stream again as the attempt
// after the last one made, with a fresh retry schedule. Its error wraps
// ErrNotRetriable when the hook lacks what a retry needs.
// Its error wraps ErrAlreadyQueued when the hook is being retried already.
func (r *Retrier) Retry(ctx context.Context, h Hook) (Queued, error) {
	args, err := r.args(h)
	if err != nil {
		return Queued{}, err
	}
	if err := r.mark(ctx, h); err != nil {
		return Queued{}, err
	}
	id, err := r.rdb.XAdd(ctx, args).Result()
	if err != nil {
		r.unmark(ctx, h)
		return Queued{}, fmt.Errorf("queue hook %q on %s: %w", h.ID, r.stream, err)
	}
	return Queued{ID: h.ID, Stream: r.stream, EntryID: id, Attempt: h.AttemptsMade() + 1}, nil
}

// RetryAll queues every hook that can be retried, and is not being retried
// already, in one round trip and returns what was queued; the other hooks
// are skipped.
func (r *Retrier) RetryAll(ctx context.Context, hooks []Hook) ([]Queued, error) {
	var (
		queued []Queued
		marked []Hook
		cmds   []*redis.StringCmd
	)
	pipe := r.rdb.Pipeline()
	for _, h := range hooks {
		args, err := r.args(h)
		if err != nil {
			continue
		}
		if err := r.mark(ctx, h); errors.Is(err, ErrAlreadyQueued) {
			continue
		} else if err != nil {
			r.unmarkAll(ctx, marked)
			return nil, err
		}
		marked = append(marked, h)
		cmds = append(cmds, pipe.XAdd(ctx, args))
		queued = append(queued, Queued{ID: h.ID, Stream: r.stream, Attempt: h.AttemptsMade() + 1})
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		r.unmarkAll(ctx, marked)
		return nil, fmt.Errorf("queue %d hooks on %s: %w", len(cmds), r.stream, err)
	}
	for i, c := range cmds {
		queued[i].EntryID = c.Val()
	}
	return queued, nil
}

// mark marks the retry of h's next attempt on the stored hook.
func (r *Retrier) mark(ctx context.Context, h Hook) error {
	ok, err := r.store.MarkRetry(ctx, h.ID, h.AttemptsMade()+1, r.now())
	if err != nil {
		return fmt.Errorf("mark the retry of hook %q: %w", h.ID, err)
	}
	if !ok {
		return fmt.Errorf("%w: attempt %d or a later one is queued or under way; its status shows here once the engine reports it", ErrAlreadyQueued, h.AttemptsMade()+1)
	}
	return nil
}

// unmark takes the mark back after queueing failed, so that the hook can
// be retried again at once. Should that fail too, the mark lapses after
// RetryMarkTTL.
func (r *Retrier) unmark(ctx context.Context, h Hook) {
	_ = r.store.ClearRetry(context.WithoutCancel(ctx), h.ID, h.AttemptsMade()+1)
}

func (r *Retrier) unmarkAll(ctx context.Context, hooks []Hook) {
	for _, h := range hooks {
		r.unmark(ctx, h)
	}
}

// args is the XADD of the hook's job, or why there is none.
func (r *Retrier) args(h Hook) (*redis.XAddArgs, error) {
	switch {
	case h.Job == "":
		return nil, fmt.Errorf("%w: the engine did not report the job's payload (an older engine, or a job over 4 MiB, which is not kept)", ErrNotRetriable)
	case h.StreamID == "":
		return nil, fmt.Errorf("%w: the engine did not report the job's stream id", ErrNotRetriable)
	case h.Status == sendhooks.StatusRetrying:
		return nil, fmt.Errorf("%w: the engine is still retrying it on its schedule", ErrAlreadyQueued)
	}
	if _, err := sendhooks.ParseJob([]byte(h.Job)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRetriable, err)
	}
	next := strconv.Itoa(h.AttemptsMade() + 1)
	return &redis.XAddArgs{
		Stream: r.stream,
		Values: []any{
			sendhooks.StreamField, string(h.Job),
			sendhooks.FieldOrigin, h.StreamID,
			sendhooks.FieldAttempt, next,
			sendhooks.FieldRunStart, next,
		},
	}, nil
}
