package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks/monitor"
)

// Prune removes up to limit hooks created before the time given, oldest
// first, with their share of the rollups, and then the counters left at
// zero whose bucket ended before it.
//
// On MongoDB the TTL indexes Setup makes remove expired hooks and counters
// by themselves, but only once a minute, and not on every server that
// speaks the protocol (FerretDB v1); Prune makes retention exact whenever
// the service runs it.
//
// Each hook is removed by findOneAndDelete, which returns the document it
// removed: the share taken from the rollups is exactly that of the hook
// removed, even when Apply wrote it in between.
func (s *Store) Prune(ctx context.Context, before time.Time, limit int) (n int, err error) {
	if limit <= 0 {
		return 0, nil
	}
	before = before.UTC()
	// Oldest first: the {created:-1,_id:-1} index read backwards.
	cur, err := s.hooks.Find(ctx, bson.D{{Key: "created", Value: bson.D{{Key: "$lt", Value: before}}}},
		options.Find().SetSort(oldestFirst).SetLimit(int64(limit)).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return 0, fmt.Errorf("find hooks created before %v: %w", before, err)
	}
	var ids []struct {
		ID bson.RawValue `bson:"_id"`
	}
	if err := cur.All(ctx, &ids); err != nil {
		return 0, fmt.Errorf("read hooks created before %v: %w", before, err)
	}
	// The older monitor's hooks (an ObjectId _id) count in the legacy
	// counters: their share is taken from those.
	delta, legacy := monitor.RollupDelta{}, monitor.RollupDelta{}
	defer func() {
		// What was removed has its share taken away even when a later
		// removal failed.
		if rerr := s.addRollups(ctx, delta); rerr != nil && err == nil {
			err = rerr
		}
		if rerr := s.addRollupsTo(ctx, legacyPrefix, legacy); rerr != nil && err == nil {
			err = rerr
		}
	}()
	for _, id := range ids {
		raw, err := s.hooks.FindOneAndDelete(ctx, bson.D{
			{Key: "_id", Value: id.ID},
			{Key: "created", Value: bson.D{{Key: "$lt", Value: before}}},
		}).Raw()
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // removed by another monitor or the TTL monitor
		}
		if err != nil {
			return n, fmt.Errorf("remove hook %s: %w", id.ID, err)
		}
		h, err := decodeHook(raw)
		if err != nil {
			return n, err
		}
		if id.ID.Type == bson.TypeObjectID {
			legacy.Change(&h, nil)
		} else {
			delta.Change(&h, nil)
		}
		n++
	}
	if err := s.addRollupsTo(ctx, legacyPrefix, legacy); err != nil {
		return n, err
	}
	if err := s.addRollups(ctx, delta); err != nil {
		return n, err
	}
	// Counters at zero of buckets that ended before the time: no hook
	// will be counted in them again, unless an event of an expired hook
	// arrives late (and then Apply makes them again).
	for _, kind := range []monitor.RollupKind{monitor.RollupMinute, monitor.RollupHour, monitor.RollupReceiver, monitor.RollupLatency} {
		_, err := s.rollups.DeleteMany(ctx, bson.D{
			{Key: "kind", Value: string(kind)},
			{Key: "bucket", Value: bson.D{{Key: "$lte", Value: before.Add(-kind.Width())}}},
			{Key: "n", Value: bson.D{{Key: "$lte", Value: 0}}},
		})
		if err != nil {
			return n, fmt.Errorf("remove empty rollups of kind %q: %w", kind, err)
		}
	}
	return n, nil
}
