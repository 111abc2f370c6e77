package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks/monitor"
)

// Earlier versions counted hooks per whole URL (monitor.RollupEndpoint):
// one counter per webhook when every URL holds a token. Setup turns those
// counters into per-receiver ones (monitor.RollupReceiver) once, with
// moveEndpointRollups; nothing writes per-URL counters any more.

// moveEndpointRollups moves the per-URL counters into per-receiver ones,
// a created hour at a time, oldest first (a read of the {kind,bucket}
// index finds the hour; with nothing to move, that read finds nothing).
//
// An hour is moved by adding its per-URL counts, summed by receiver, to
// the receiver counters, each marked moved in the same update; then its
// per-URL counters are deleted. An update only matches a counter not yet
// marked (a marked one makes the upsert fail on its _id, which counts as
// done), so a run cut short anywhere, or two monitors moving at once, add
// each hour's counts once: an hour is read again only while its per-URL
// counters are still all there.
//
// The older monitor's counters (legacyPrefix) are not moved but rebuilt
// from its documents: the state of the legacy rollups is reset before
// they are deleted, so that buildLegacyRollups, which Setup runs next,
// counts every legacy hour again.
func (s *Store) moveEndpointRollups(ctx context.Context) error {
	if err := s.dropLegacyEndpointRollups(ctx); err != nil {
		return err
	}
	kind := bson.E{Key: "kind", Value: string(monitor.RollupEndpoint)}
	// Not the older monitor's counters, which are rebuilt instead: every
	// other per-URL counter's _id starts with "e|", before legacyPrefix.
	notLegacy := bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: legacyPrefix}}}
	for {
		var first rollupDoc
		err := s.rollups.FindOne(ctx, bson.D{kind, notLegacy}, options.FindOne().
			SetSort(bson.D{{Key: "kind", Value: 1}, {Key: "bucket", Value: 1}})).Decode(&first)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil
		} else if err != nil {
			return fmt.Errorf("find the per-URL counters of earlier versions: %w", err)
		}
		hour := bson.D{kind, {Key: "bucket", Value: first.Bucket}, notLegacy}
		if err := s.moveEndpointHour(ctx, hour); err != nil {
			return fmt.Errorf("move the per-URL counters of the hour %v: %w", first.Bucket.UTC(), err)
		}
		if _, err := s.rollups.DeleteMany(ctx, hour); err != nil {
			return fmt.Errorf("delete the per-URL counters of the hour %v: %w", first.Bucket.UTC(), err)
		}
	}
}

// moveEndpointHour adds the per-URL counters that hour selects to the
// receiver counters, summed by receiver, marking each (one whose sum is 0
// too, so that a move of the hour cut short never adds it later). The sums
// are taken as the counters are read: memory grows with the hour's
// receivers, not its webhooks.
func (s *Store) moveEndpointHour(ctx context.Context, hour bson.D) error {
	cur, err := s.rollups.Find(ctx, hour)
	if err != nil {
		return err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	sums := map[monitor.RollupKey]int64{}
	for cur.Next(ctx) {
		var d rollupDoc
		if err := cur.Decode(&d); err != nil {
			return err
		}
		k := d.row().RollupKey
		k.Kind, k.URL = monitor.RollupReceiver, monitor.ReceiverOf(d.URL)
		sums[k] += d.N
	}
	if err := cur.Err(); err != nil {
		return err
	}
	var models []mongo.WriteModel
	for k, n := range sums {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: rollupID(k)}, {Key: "moved", Value: bson.D{{Key: "$exists", Value: false}}}}).
			SetUpdate(s.counterUpdate(k, n, bson.E{Key: "moved", Value: true})).
			SetUpsert(true))
	}
	// An upsert that fails on its _id met a counter that is either marked
	// already (moved by an earlier run) or was just made by a monitor
	// counting a hook: it is sent once more, which adds to the second and
	// fails again on the first, as it should.
	for len(models) > 0 {
		n := min(len(models), writeChunk)
		if _, err := s.upsertAgainOnDuplicate(ctx, models[:n], 2); err != nil {
			return err
		}
		models = models[n:]
	}
	return nil
}

// dropLegacyEndpointRollups deletes the legacy per-URL counters, if any,
// after resetting the state of the legacy rollups so that they are built
// again, per receiver.
func (s *Store) dropLegacyEndpointRollups(ctx context.Context) error {
	legacy := bson.D{
		{Key: "kind", Value: string(monitor.RollupEndpoint)},
		{Key: "_id", Value: bson.D{{Key: "$gte", Value: legacyPrefix}, {Key: "$lt", Value: legacyPrefixEnd}}},
	}
	err := s.rollups.FindOne(ctx, legacy).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	} else if err != nil {
		return fmt.Errorf("find the legacy per-URL counters: %w", err)
	}
	if _, err := s.meta.DeleteOne(ctx, bson.D{{Key: "_id", Value: legacyRollupsState}}); err != nil {
		return fmt.Errorf("reset the state of the legacy rollups: %w", err)
	}
	if _, err := s.rollups.DeleteMany(ctx, legacy); err != nil {
		return fmt.Errorf("delete the legacy per-URL counters: %w", err)
	}
	return nil
}
