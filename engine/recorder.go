package engine

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxRecordBatch bounds how many outcomes go into one script call.
const maxRecordBatch = 256

// recorder writes the outcomes that workers hand it in batches: whatever
// has queued up while the previous batch was being written goes out in one
// script call, one round trip, instead of one round trip per job. Under
// load this is most of what the engine saves over a naive loop; when idle
// a batch is a single outcome and costs no extra wait.
//
// Workers do not wait for the write: they go on to their next job while
// it is made, and the recorder reports each outcome's result to the done
// function given to run, which gives the job's slot back (or retries).
type recorder struct {
	rdb  *redis.Client
	keys keys
	in   chan entryOutcome
}

// newRecorder returns a recorder whose queue holds up to capacity
// outcomes: as many as there are jobs the engine may hold, so that
// handing one over never waits.
func newRecorder(rdb *redis.Client, k keys, capacity int) *recorder {
	return &recorder{rdb: rdb, keys: k, in: make(chan entryOutcome, capacity)}
}

// submit queues an outcome for the next batch.
func (r *recorder) submit(o entryOutcome) { r.in <- o }

// run writes batches, calling done with each outcome and the result of its
// write, until ctx is done; then it writes what is still queued and
// returns. Its owner cancels ctx only after every worker that could call
// submit has returned.
func (r *recorder) run(ctx context.Context, done func(entryOutcome, error)) {
	batch := make([]entryOutcome, 0, maxRecordBatch)
	for {
		select {
		case <-ctx.Done():
			for len(r.in) > 0 {
				r.write(ctx, r.gather(batch[:0]), done)
			}
			return
		case o := <-r.in:
			r.write(ctx, r.gather(append(batch[:0], o)), done)
		}
	}
}

// gather adds what is queued to batch, up to maxRecordBatch.
func (r *recorder) gather(batch []entryOutcome) []entryOutcome {
	for len(batch) < maxRecordBatch {
		select {
		case o := <-r.in:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

func (r *recorder) write(ctx context.Context, batch []entryOutcome, done func(entryOutcome, error)) {
	// A write is finished even while stopping: its jobs are done and only
	// their outcomes are missing.
	writeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	err := record(writeCtx, r.rdb, r.keys, batch)
	cancel()
	for _, o := range batch {
		done(o, err)
	}
}
