package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// rollupWriteTimeout bounds the rollup write that follows a hook write,
// which goes ahead when the caller's context has ended: the hooks are
// stored, and their share of the counters would be lost for good.
const rollupWriteTimeout = 2 * time.Minute

// hookWriteTimeout bounds a batch's hook write, which goes ahead when the
// caller's context ends while it runs: a write cut short reports nothing
// of which hooks it stored, and the share of those hooks in the rollups
// would be lost (applying the events again finds them stored already).
const hookWriteTimeout = 2 * time.Minute

// maxApplyRounds bounds how often Apply merges a hook again after another
// writer changed it between the read and the write.
const maxApplyRounds = 20

// Apply merges the events into their hooks and the rollups.
//
// The events are grouped by hook; the stored hooks are read with one
// query, each is merged with its events (monitor.Hook.Apply, which is
// idempotent and order-proof) and, when that changed it, written back
// with optimistic concurrency in one unordered BulkWrite: a new hook is
// inserted with version 1, a stored one replaced only if its version is
// still the one read. A write that lost a race (a duplicate key) is merged
// again from the hook now stored.
//
// The replace is an upsert on {_id, version}: when the version moved on,
// the upsert's insert fails with a duplicate key, which BulkWrite reports
// with the index of the write (a plain replace matching nothing would only
// lower the total matched count, and say nothing of which write lost). When
// the hook was removed in between (Prune), the upsert inserts it and
// BulkWrite says so: its rollup share is then counted as new, since Prune
// took away the old one.
//
// The rollups then get the difference every written hook made
// (monitor.RollupDelta), as upserting $inc updates in one more unordered
// BulkWrite. The two writes are not one transaction (FerretDB has none and
// a standalone MongoDB neither): a process killed between them leaves the
// hooks written and the rollups short of that batch's share, and the
// events, applied again, change no hook and so add nothing. Totals and
// statistics can then be off by at most that batch until the rollups
// expire with the retention. (On a replica set both writes could be one
// transaction; the store does not use one, so that it behaves alike on
// every deployment.)
//
// The per-write outcomes read from BulkWrite are MongoDB's: an unordered
// batch tries every write and reports each failure by index. FerretDB v1
// stops an update batch at its first error and runs a conditional update
// as a read then a write, so there only a single writer is exact.
func (s *Store) Apply(ctx context.Context, events []monitor.Event) (err error) {
	byKey := map[string][]monitor.Event{}
	var keys []string
	for _, ev := range events {
		k := ev.Key()
		if k == "" {
			continue // ParseEvent lets none through; nothing could find it
		}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], ev)
	}
	delta := monitor.RollupDelta{}
	defer func() {
		// The hooks written so far are stored: their share of the rollups
		// goes in even when a later round failed, or the caller's deadline
		// passed during the hook write (given a short time of its own).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollupWriteTimeout)
		defer cancel()
		if rerr := s.addRollups(rctx, delta); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	for round := 1; len(keys) > 0; round++ {
		if round > maxApplyRounds {
			return fmt.Errorf("write %d hooks: other writers changed them in each of %d rounds", len(keys), maxApplyRounds)
		}
		if keys, err = s.mergeRound(ctx, keys, byKey, delta); err != nil {
			return err
		}
	}
	return nil
}

// hookWrite is one hook written in a round.
type hookWrite struct {
	old, new *monitor.Hook
}

// mergeRound merges and writes the hooks of keys once, adds what the
// written hooks changed to delta, and returns the keys that lost a race.
func (s *Store) mergeRound(ctx context.Context, keys []string, byKey map[string][]monitor.Event, delta monitor.RollupDelta) ([]string, error) {
	stored, err := s.find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}}, options.Find())
	if err != nil {
		return nil, fmt.Errorf("read %d hooks to merge: %w", len(keys), err)
	}
	current := make(map[string]*monitor.Hook, len(stored))
	for i := range stored {
		current[stored[i].ID] = &stored[i]
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	var (
		models []mongo.WriteModel
		writes []hookWrite
	)
	for _, k := range keys {
		old := current[k]
		h := &monitor.Hook{}
		if old != nil {
			*h = *old
			// Hook.Apply edits the attempts in place: the old hook must
			// keep its own for the rollup difference.
			h.Attempts = slices.Clone(old.Attempts)
		}
		changed := false
		for _, ev := range byKey[k] {
			changed = h.Apply(ev) || changed
		}
		if !changed {
			continue
		}
		if err := h.CheckLimits(); err != nil {
			return nil, fmt.Errorf("hook %.64q: %w", k, err)
		}
		h.UpdatedAt = now
		if old == nil {
			h.Version = 1
			models = append(models, mongo.NewInsertOneModel().SetDocument(h))
		} else {
			h.Version = old.Version + 1
			models = append(models, mongo.NewReplaceOneModel().
				SetFilter(bson.D{{Key: "_id", Value: k}, {Key: "version", Value: versionMatch(old.Version)}}).
				SetReplacement(h).
				SetUpsert(true))
		}
		writes = append(writes, hookWrite{old: old, new: h})
	}
	if len(models) == 0 {
		return nil, nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hookWriteTimeout)
	defer cancel()
	res, werr := s.hooks.BulkWrite(wctx, models, options.BulkWrite().SetOrdered(false))
	dups, other := bulkErrors(werr)
	if errors.Is(other, errNotBulk) {
		// Which writes were done is unknown; the caller applies the
		// events again, and the rollups may miss this batch's share
		// (see Apply).
		return nil, fmt.Errorf("write %d hooks: %w", len(models), werr)
	}
	var upserted map[int64]any
	if res != nil {
		upserted = res.UpsertedIDs
	}
	var again []string
	for i, w := range writes {
		switch {
		case dups[i]:
			again = append(again, w.new.ID)
		case !failed(werr, i):
			if _, ok := upserted[int64(i)]; ok {
				delta.Change(nil, w.new)
			} else {
				delta.Change(w.old, w.new)
			}
		}
	}
	if other != nil {
		return nil, fmt.Errorf("write %d hooks: %w", len(models), other)
	}
	return again, nil
}

// versionMatch matches a stored version; version 0 is also a document
// without one (written by something other than this store).
func versionMatch(v int64) any {
	if v == 0 {
		return bson.D{{Key: "$in", Value: bson.A{0, nil}}}
	}
	return v
}

// failed reports whether write i of a BulkWrite failed.
func failed(err error, i int) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Index == i {
			return true
		}
	}
	return false
}

// rollupDoc is one rollup counter in the rollups collection.
type rollupDoc struct {
	ID     string    `bson:"_id"`
	Kind   string    `bson:"kind"`
	Bucket time.Time `bson:"bucket"`
	Status string    `bson:"status"`
	URL    string    `bson:"url"`
	Bin    int       `bson:"bin"`
	N      int64     `bson:"n"`
}

// row is the counter as the monitor package knows it.
func (d rollupDoc) row() monitor.RollupRow {
	return monitor.RollupRow{
		RollupKey: monitor.RollupKey{
			Kind:   monitor.RollupKind(d.Kind),
			Bucket: d.Bucket.UTC(),
			Status: sendhooks.Status(d.Status),
			URL:    d.URL,
			Bin:    d.Bin,
		},
		N: d.N,
	}
}

// rollupID is the _id of a counter: every field of its key, the url last
// since it alone may hold the separator.
func rollupID(k monitor.RollupKey) string {
	return strings.Join([]string{
		string(k.Kind),
		strconv.FormatInt(k.Bucket.UTC().UnixMilli(), 10),
		string(k.Status),
		strconv.Itoa(k.Bin),
		k.URL,
	}, "|")
}

// addRollups adds delta to the counters, creating those missing. Each
// counter document expires (TTL on expireAt) once every hook it counts has
// passed the retention: at bucket + width + retention.
func (s *Store) addRollups(ctx context.Context, delta monitor.RollupDelta) error {
	return s.addRollupsTo(ctx, "", delta)
}

// counterUpdate adds n to the counter of k and sets the fields of set, an
// upsert's update: it makes the counter when missing and sets its expiry.
func (s *Store) counterUpdate(k monitor.RollupKey, n int64, set ...bson.E) bson.D {
	if retention := time.Duration(s.retention.Load()); retention > 0 {
		// $set, not $setOnInsert: a changed retention reaches every
		// counter still being written.
		set = append(set, bson.E{Key: "expireAt", Value: k.Bucket.UTC().Add(k.Kind.Width() + retention)})
	}
	update := bson.D{
		{Key: "$inc", Value: bson.D{{Key: "n", Value: n}}},
		{Key: "$setOnInsert", Value: rollupFields(k)},
	}
	if len(set) > 0 {
		update = append(update, bson.E{Key: "$set", Value: bson.D(set)})
	}
	return update
}

// addRollupsTo adds delta to the counters whose _id starts with prefix:
// "" for this store's hooks, legacyPrefix for the older monitor's.
func (s *Store) addRollupsTo(ctx context.Context, prefix string, delta monitor.RollupDelta) error {
	if len(delta) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(delta))
	for k, n := range delta {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: prefix + rollupID(k)}}).
			SetUpdate(s.counterUpdate(k, n)).
			SetUpsert(true))
	}
	// Two writers creating one counter at once may see a duplicate key
	// (MongoDB retries such an upsert itself; FerretDB does not): those
	// writes are sent again, and find the counter then.
	left, err := s.upsertAgainOnDuplicate(ctx, models, maxApplyRounds)
	if err != nil {
		return fmt.Errorf("add to %d rollup counters: %w", len(models), err)
	}
	if len(left) > 0 {
		return fmt.Errorf("add to %d rollup counters: %d still met a duplicate _id after %d writes", len(models), len(left), maxApplyRounds)
	}
	clear(delta)
	return nil
}

// upsertAgainOnDuplicate runs the upserts as unordered bulk writes on the
// rollups, sending again those that failed on a duplicate _id, in at most
// rounds writes. It returns the upserts that still failed so, or the
// error of a write that failed otherwise.
func (s *Store) upsertAgainOnDuplicate(ctx context.Context, models []mongo.WriteModel, rounds int) ([]mongo.WriteModel, error) {
	for round := 1; round <= rounds && len(models) > 0; round++ {
		_, err := s.rollups.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
		dups, other := bulkErrors(err)
		if other != nil {
			return nil, err // as the server said it: the caller decides what it means
		}
		var again []mongo.WriteModel
		for i, m := range models {
			if dups[i] {
				again = append(again, m)
			}
		}
		models = again
	}
	return models, nil
}
