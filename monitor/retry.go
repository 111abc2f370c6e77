package monitor

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// ErrNotRetriable says why a hook cannot be put back on the jobs stream;
// errors wrapping it carry the reason.
var ErrNotRetriable = errors.New("hook cannot be retried")

// Retrier puts stored jobs back on the jobs stream, where the engine picks
// them up as further attempts of the same job.
type Retrier struct {
	rdb    *redis.Client
	stream string
}

// NewRetrier writes retries to the jobs stream of rdb.
func NewRetrier(rdb *redis.Client, stream string) *Retrier {
	return &Retrier{rdb: rdb, stream: stream}
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
func (r *Retrier) Retry(ctx context.Context, h Hook) (Queued, error) {
	args, err := r.args(h)
	if err != nil {
		return Queued{}, err
	}
	id, err := r.rdb.XAdd(ctx, args).Result()
	if err != nil {
		return Queued{}, fmt.Errorf("queue hook %q on %s: %w", h.ID, r.stream, err)
	}
	return Queued{ID: h.ID, Stream: r.stream, EntryID: id, Attempt: h.AttemptsMade() + 1}, nil
}

// RetryAll queues every hook that can be retried in one round trip and
// returns what was queued; hooks that cannot be retried are skipped.
func (r *Retrier) RetryAll(ctx context.Context, hooks []Hook) ([]Queued, error) {
	var (
		queued []Queued
		cmds   []*redis.StringCmd
	)
	pipe := r.rdb.Pipeline()
	for _, h := range hooks {
		args, err := r.args(h)
		if err != nil {
			continue
		}
		cmds = append(cmds, pipe.XAdd(ctx, args))
		queued = append(queued, Queued{ID: h.ID, Stream: r.stream, Attempt: h.AttemptsMade() + 1})
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("queue %d hooks on %s: %w", len(cmds), r.stream, err)
	}
	for i, c := range cmds {
		queued[i].EntryID = c.Val()
	}
	return queued, nil
}

// args is the XADD of the hook's job, or why there is none.
func (r *Retrier) args(h Hook) (*redis.XAddArgs, error) {
	switch {
	case h.Job == "":
		return nil, fmt.Errorf("%w: the engine did not report the job's payload (an older engine, or a job over 4 MiB, which is not kept)", ErrNotRetriable)
	case h.StreamID == "":
		return nil, fmt.Errorf("%w: the engine did not report the job's stream id", ErrNotRetriable)
	case h.Status == sendhooks.StatusRetrying:
		return nil, fmt.Errorf("%w: the job is still being retried by the engine", ErrNotRetriable)
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
