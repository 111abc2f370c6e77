package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks/monitor"
)

// Stats reads the rollup counters of the query's range and builds the
// statistics from them (monitor.BuildStats): the counts from q.CountKind(),
// latency and endpoints from the hourly counters. Each read is a range of
// the {kind,bucket} index; a plain find, since FerretDB lacks most of the
// aggregation stages that would sum them in the server.
func (s *Store) Stats(ctx context.Context, q monitor.StatsQuery) (monitor.Stats, error) {
	kind := q.CountKind()
	from, to := q.RollupRange(kind.Width())
	rows, err := s.readRollups(ctx, bson.D{
		{Key: "kind", Value: string(kind)},
		{Key: "bucket", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: to}}},
	})
	if err != nil {
		return monitor.Stats{}, err
	}
	from, to = q.RollupRange(time.Hour)
	hourly, err := s.readRollups(ctx, bson.D{
		{Key: "kind", Value: bson.D{{Key: "$in", Value: bson.A{string(monitor.RollupLatency), string(monitor.RollupReceiver)}}}},
		{Key: "bucket", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: to}}},
	})
	if err != nil {
		return monitor.Stats{}, err
	}
	return monitor.BuildStats(q, append(rows, hourly...)), nil
}

// readRollups returns the counters filter selects, one row per key: the
// legacy counter of a key (see legacy.go) is added to its counter.
func (s *Store) readRollups(ctx context.Context, filter bson.D) ([]monitor.RollupRow, error) {
	cur, err := s.rollups.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "expireAt", Value: 0}}))
	if err != nil {
		return nil, fmt.Errorf("find rollups: %w", err)
	}
	var docs []rollupDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("read rollups: %w", err)
	}
	rows := make([]monitor.RollupRow, 0, len(docs))
	at := make(map[monitor.RollupKey]int, len(docs))
	for _, d := range docs {
		r := d.row()
		if i, ok := at[r.RollupKey]; ok {
			rows[i].N += r.N
			continue
		}
		at[r.RollupKey] = len(rows)
		rows = append(rows, r)
	}
	return rows, nil
}
