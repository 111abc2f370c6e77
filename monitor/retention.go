package monitor

import (
	"context"
	"time"
)

// Retention runs in small batches, each its own short write, so that
// ingestion (which shares the store's one writer on SQLite) waits at most
// one batch.
const (
	// PruneBatch is how many webhooks one batch removes at most.
	PruneBatch = 500
	// PruneEvery is how often the store is looked at for expired webhooks.
	PruneEvery = time.Minute
	// pruneBreath is the pause between two full batches.
	pruneBreath = 20 * time.Millisecond
)

// prune removes the webhooks older than the retention, every PruneEvery,
// until ctx is done. With a retention of 0 it keeps everything.
func (s *Service) prune(ctx context.Context) {
	if s.cfg.Retention <= 0 {
		return
	}
	t := time.NewTicker(PruneEvery)
	defer t.Stop()
	for {
		if err := s.PruneOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("removing expired webhooks failed; trying again later", "err", err, "retryIn", PruneEvery)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PruneOnce removes every webhook created more than the retention ago, a
// batch at a time.
func (s *Service) PruneOnce(ctx context.Context) error {
	before := time.Now().Add(-s.cfg.Retention)
	for {
		n, err := s.store.Prune(ctx, before, PruneBatch)
		s.metrics.pruned.Add(float64(n))
		if err != nil || n < PruneBatch {
			return err
		}
		sleep(ctx, pruneBreath)
		if ctx.Err() != nil {
			return nil
		}
	}
}
