package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// moveBatch bounds the earlier per-URL counters one transaction of
// moveEndpointRollups moves (a variable so that tests can cross batches).
var moveBatch = 10_000

// afterMoveBatch, when set (by tests only), is called after each batch
// moved with the count of batches so far; an error stops the move there,
// as a monitor killed between two batches would.
var afterMoveBatch func(batches int) error

// moveEndpointRollups turns the per-URL counters of earlier versions
// (monitor.RollupEndpoint) into per-receiver ones (monitor.RollupReceiver),
// moveBatch of them at a time in primary-key order. Each transaction adds
// its batch's counts to the receivers' counters and deletes the batch, so
// a run cut short leaves every count in one place or the other, and the
// next Setup moves the rest. With nothing to move it is one read of the
// primary key that finds nothing.
func (s *Store) moveEndpointRollups(ctx context.Context) error {
	for batches := 1; ; batches++ {
		var moved int
		err := s.write(ctx, func(tx *sql.Tx) (err error) {
			moved, err = s.moveEndpointBatch(ctx, tx)
			return err
		})
		if err != nil {
			return fmt.Errorf("move the per-URL counters of %s to per-receiver ones: %w", s.path, err)
		}
		if moved < moveBatch {
			return nil
		}
		if afterMoveBatch != nil {
			if err := afterMoveBatch(batches); err != nil {
				return err
			}
		}
	}
}

// moveEndpointBatch moves the first moveBatch per-URL counters and
// returns how many it moved.
func (s *Store) moveEndpointBatch(ctx context.Context, tx *sql.Tx) (int, error) {
	res, err := tx.QueryContext(ctx, `SELECT bucket, status, url, bin, n FROM rollups
WHERE kind = ? ORDER BY kind, bucket, status, url, bin LIMIT ?`, string(monitor.RollupEndpoint), moveBatch)
	if err != nil {
		return 0, err
	}
	defer res.Close()
	delta := monitor.RollupDelta{}
	var moved int
	var last []any // the key of the last counter read
	for res.Next() {
		var bucket, n int64
		var status, url string
		var bin int
		if err := res.Scan(&bucket, &status, &url, &bin, &n); err != nil {
			return 0, err
		}
		k := monitor.RollupKey{Kind: monitor.RollupReceiver, Bucket: time.UnixMilli(bucket).UTC(),
			Status: sendhooks.Status(status), URL: monitor.ReceiverOf(url)}
		if delta[k] += n; delta[k] == 0 {
			delete(delta, k)
		}
		moved, last = moved+1, []any{string(monitor.RollupEndpoint), bucket, status, url, bin}
	}
	if err := res.Err(); err != nil || moved == 0 {
		return 0, err
	}
	res.Close()
	_, err = tx.ExecContext(ctx, `DELETE FROM rollups WHERE kind = ?1 AND (kind, bucket, status, url, bin) <= (?1, ?2, ?3, ?4, ?5)`, last...)
	if err != nil {
		return 0, err
	}
	return moved, s.addRollups(ctx, tx, delta)
}
