package engine

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxRecordBatch bounds how many outcomes go into one pipeline.
const maxRecordBatch = 256

// recorder writes the outcomes that workers hand it in batches: whatever
// has queued up while the previous batch was being written goes out in one
// pipeline, one round trip, instead of one round trip per job. Under
// load this is most of what the engine saves over a naive loop; when idle
// a batch is a single outcome and costs no extra wait.
type recorder struct {
	rdb  *redis.Client
	keys keys
	in   chan recordRequest
}

type recordRequest struct {
	entryOutcome
	done chan error // receives the pipeline's result
}

func newRecorder(rdb *redis.Client, k keys) *recorder {
	return &recorder{rdb: rdb, keys: k, in: make(chan recordRequest)}
}

// write hands an outcome to the recorder's loop and waits for the result.
func (r *recorder) write(ctx context.Context, o entryOutcome) error {
	req := recordRequest{entryOutcome: o, done: make(chan error, 1)}
	select {
	case r.in <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

// run writes batches until ctx is done. Its owner cancels ctx only after
// every worker that could call write has returned.
func (r *recorder) run(ctx context.Context) {
	batch := make([]recordRequest, 0, maxRecordBatch)
	outcomes := make([]entryOutcome, 0, maxRecordBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-r.in:
			batch = append(batch[:0], req)
		}
	gather:
		for len(batch) < maxRecordBatch {
			select {
			case req := <-r.in:
				batch = append(batch, req)
			default:
				break gather
			}
		}
		outcomes = outcomes[:0]
		for _, req := range batch {
			outcomes = append(outcomes, req.entryOutcome)
		}
		// A write that has begun is finished even while stopping: its
		// workers are waiting for it.
		writeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := record(writeCtx, r.rdb, r.keys, outcomes)
		cancel()
		for _, req := range batch {
			req.done <- err
		}
	}
}
