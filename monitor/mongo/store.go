// Package mongo keeps the monitor's webhooks in MongoDB: the adapter of
// monitor.Store for production and scale-out installs.
//
// Two collections hold everything. "hooks" has one document per webhook
// (the monitor.Hook shape, _id = Hook.ID, the job kept once inside it), so
// that a read of one webhook is one document and a list is one index range.
// "rollups" has one document per counter (monitor.RollupKey), written in
// the same Apply as the hooks they count, so that totals and statistics
// read a bounded number of small documents whatever is stored.
//
// Every query is written for a real MongoDB 7 to serve from an index (see
// Setup and TestExplainPlans). The tests run against FerretDB, which
// answers the same queries correctly but by scanning.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks/monitor"
)

// The collections of the store.
const (
	// HooksCollection holds one document per webhook.
	HooksCollection = "hooks"
	// RollupsCollection holds one document per rollup counter.
	RollupsCollection = "rollups"
)

// Store keeps the monitor's webhooks and rollups in one MongoDB database.
// It is safe for concurrent use, and several monitors may write one
// database at once: hooks are written with optimistic concurrency.
type Store struct {
	client  *mongo.Client
	db      *mongo.Database
	hooks   *mongo.Collection
	rollups *mongo.Collection
	meta    *mongo.Collection
	// retention is the retention Setup was given, in nanoseconds: Apply
	// stamps rollup documents with the time their TTL index removes them.
	retention atomic.Int64
	now       func() time.Time
}

var _ monitor.Store = (*Store)(nil)

// Open makes a store on the database of the MongoDB at uri. It does not
// wait for the server, so that the monitor starts while MongoDB is away:
// operations fail until it answers.
func Open(uri, database string) (*Store, error) {
	return open(options.Client().ApplyURI(uri), database)
}

// open makes a store with the client options given (tests add a command
// monitor).
func open(opts *options.ClientOptions, database string) (*Store, error) {
	client, err := mongo.Connect(opts.
		SetServerSelectionTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to MongoDB: %w", err)
	}
	db := client.Database(database)
	return &Store{
		client:  client,
		db:      db,
		hooks:   db.Collection(HooksCollection),
		rollups: db.Collection(RollupsCollection),
		meta:    db.Collection(MetaCollection),
		now:     time.Now,
	}, nil
}

// Ping checks that MongoDB answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, nil); err != nil {
		return fmt.Errorf("ping MongoDB: %w", err)
	}
	return nil
}

// Close disconnects from MongoDB.
func (s *Store) Close(ctx context.Context) error {
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("disconnect from MongoDB: %w", err)
	}
	return nil
}

// Sort orders of the hooks. The list is newest created first with ties by
// _id descending; every list query sorts by one of these so that the
// {created:-1,_id:-1} index (or {status:1,created:-1,_id:-1} after a status
// prefix) gives the order without a SORT stage.
var (
	newestFirst = bson.D{{Key: "created", Value: -1}, {Key: "_id", Value: -1}}
	oldestFirst = bson.D{{Key: "created", Value: 1}, {Key: "_id", Value: 1}}
)

// index is one index the store needs.
type index struct {
	coll *mongo.Collection
	keys bson.D
	// ttl, when set, makes a TTL index that removes documents that many
	// seconds after the indexed time.
	ttl *int32
}

// Setup creates the indexes, one per command (FerretDB v1 fails a
// createIndexes that names several indexes of which some exist), and sets
// the TTL of the retention: hooks expire retention after created, rollups
// at their expireAt. A TTL index with another expiry is changed, so that a
// changed RETENTION takes effect; with a retention of 0 the hooks' TTL
// index is dropped and nothing expires. Then it turns the per-URL
// counters of earlier versions into per-receiver ones
// (moveEndpointRollups). Last it counts the older monitor's documents not
// counted yet in the legacy rollups (buildLegacyRollups): a read of the
// _id index when there are none.
func (s *Store) Setup(ctx context.Context, retention time.Duration) error {
	if err := s.setupIndexes(ctx, retention); err != nil {
		return err
	}
	if err := s.moveEndpointRollups(ctx); err != nil {
		return err
	}
	return s.buildLegacyRollups(ctx)
}

// setupIndexes creates the indexes and sets the TTL of the retention.
func (s *Store) setupIndexes(ctx context.Context, retention time.Duration) error {
	s.retention.Store(int64(max(retention, 0)))
	zero := int32(0)
	indexes := []index{
		// The list: newest first, ties by _id; keyset cursors and created
		// ranges are bounds on it.
		{coll: s.hooks, keys: newestFirst},
		// The list filtered by status: equality (or $in, merged by the
		// planner) on status, then the list's order.
		{coll: s.hooks, keys: bson.D{{Key: "status", Value: 1}, {Key: "created", Value: -1}, {Key: "_id", Value: -1}}},
		// Counts and lists bounded by delivered time.
		{coll: s.hooks, keys: bson.D{{Key: "delivered", Value: -1}, {Key: "_id", Value: -1}}},
		// Point lookups by the producer's webhookId and messageId, newest first.
		{coll: s.hooks, keys: bson.D{{Key: "externalId", Value: 1}, {Key: "created", Value: -1}}},
		{coll: s.hooks, keys: bson.D{{Key: "messageId", Value: 1}, {Key: "created", Value: -1}}},
		// Statistics and totals: the counters of one kind over a range of buckets.
		{coll: s.rollups, keys: bson.D{{Key: "kind", Value: 1}, {Key: "bucket", Value: 1}}},
		// Rollups expire at their expireAt (documents without one never do).
		{coll: s.rollups, keys: bson.D{{Key: "expireAt", Value: 1}}, ttl: &zero},
	}
	for _, ix := range indexes {
		if err := s.ensureIndex(ctx, ix); err != nil {
			return err
		}
	}
	ttl := bson.D{{Key: "created", Value: 1}}
	if retention <= 0 {
		return s.dropIndex(ctx, s.hooks, ttl)
	}
	secs := int32(min(retention/time.Second, time.Duration(1<<31-1)))
	return s.ensureIndex(ctx, index{coll: s.hooks, keys: ttl, ttl: &secs})
}

// ensureIndex creates ix, or changes the expiry of the TTL index on its
// keys when it differs.
func (s *Store) ensureIndex(ctx context.Context, ix index) error {
	name := ix.coll.Name()
	if ix.ttl != nil {
		spec, err := findIndex(ctx, ix.coll, ix.keys)
		if err != nil {
			return err
		}
		if spec != nil && (spec.ExpireAfterSeconds == nil || *spec.ExpireAfterSeconds != *ix.ttl) {
			if err := s.changeTTL(ctx, ix, spec); err != nil {
				return err
			}
			return nil
		}
	}
	opts := options.Index()
	if ix.ttl != nil {
		opts.SetExpireAfterSeconds(*ix.ttl)
	}
	if _, err := ix.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: opts}); err != nil {
		if ix.ttl != nil && notImplemented(err) {
			// A server without TTL indexes (FerretDB v1): Prune, which the
			// service runs every minute, keeps the retention alone, and an
			// index only for the TTL would serve nothing.
			return nil
		}
		return fmt.Errorf("create index %v on %s: %w", ix.keys, name, err)
	}
	return nil
}

// notImplemented reports whether the server said it lacks a feature.
func notImplemented(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(238) // NotImplemented
}

// changeTTL sets the expiry of an existing TTL index: collMod on MongoDB,
// where the index stays usable throughout; where collMod cannot (FerretDB
// v1) the index is dropped and made again.
func (s *Store) changeTTL(ctx context.Context, ix index, spec *mongo.IndexSpecification) error {
	cmd := bson.D{
		{Key: "collMod", Value: ix.coll.Name()},
		{Key: "index", Value: bson.D{{Key: "keyPattern", Value: ix.keys}, {Key: "expireAfterSeconds", Value: *ix.ttl}}},
	}
	if err := s.db.RunCommand(ctx, cmd).Err(); err == nil {
		return nil
	}
	if err := ix.coll.Indexes().DropOne(ctx, spec.Name); err != nil {
		return fmt.Errorf("drop TTL index %s on %s to change its expiry: %w", spec.Name, ix.coll.Name(), err)
	}
	opts := options.Index().SetExpireAfterSeconds(*ix.ttl)
	if _, err := ix.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: opts}); err != nil {
		return fmt.Errorf("create TTL index %v on %s: %w", ix.keys, ix.coll.Name(), err)
	}
	return nil
}

// dropIndex drops the index on keys, if there is one.
func (s *Store) dropIndex(ctx context.Context, coll *mongo.Collection, keys bson.D) error {
	spec, err := findIndex(ctx, coll, keys)
	if err != nil || spec == nil {
		return err
	}
	if err := coll.Indexes().DropOne(ctx, spec.Name); err != nil {
		return fmt.Errorf("drop index %s on %s: %w", spec.Name, coll.Name(), err)
	}
	return nil
}

// findIndex returns the index of coll on exactly keys, or nil.
func findIndex(ctx context.Context, coll *mongo.Collection, keys bson.D) (*mongo.IndexSpecification, error) {
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", coll.Name(), err)
	}
	want, err := bson.Marshal(keys)
	if err != nil {
		return nil, fmt.Errorf("encode index keys: %w", err)
	}
	for i := range specs {
		if sameKeys(specs[i].KeysDocument, want) {
			return &specs[i], nil
		}
	}
	return nil, nil
}

// sameKeys compares two index key documents field by field; the numbers
// may come back as another numeric type than they were written as.
func sameKeys(a, b bson.Raw) bool {
	ea, err1 := a.Elements()
	eb, err2 := b.Elements()
	if err1 != nil || err2 != nil || len(ea) != len(eb) {
		return false
	}
	for i := range ea {
		if ea[i].Key() != eb[i].Key() {
			return false
		}
		x, ok1 := ea[i].Value().AsInt64OK()
		y, ok2 := eb[i].Value().AsInt64OK()
		if !ok1 || !ok2 {
			fx, okx := ea[i].Value().DoubleOK()
			fy, oky := eb[i].Value().DoubleOK()
			if okx {
				x, ok1 = int64(fx), true
			}
			if oky {
				y, ok2 = int64(fy), true
			}
		}
		if !ok1 || !ok2 || x != y {
			return false
		}
	}
	return true
}

// decodeHook reads one hook document. Every read of a hook goes through
// here, so that documents of other shapes (the older monitor's, with an
// ObjectId _id) are read in this one place (decodeObjectIDHook).
func decodeHook(raw bson.Raw) (monitor.Hook, error) {
	if oid, ok := raw.Lookup("_id").ObjectIDOK(); ok {
		return decodeObjectIDHook(raw, oid)
	}
	var h monitor.Hook
	if err := bson.Unmarshal(raw, &h); err != nil {
		return h, fmt.Errorf("decode hook %s: %w", raw.Lookup("_id"), err)
	}
	return h, nil
}

// readHooks reads every hook of cur.
func readHooks(ctx context.Context, cur *mongo.Cursor) ([]monitor.Hook, error) {
	defer cur.Close(context.WithoutCancel(ctx))
	var hooks []monitor.Hook
	for cur.Next(ctx) {
		h, err := decodeHook(cur.Current)
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, h)
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("read hooks: %w", err)
	}
	return hooks, nil
}

// find returns the hooks that filter selects.
func (s *Store) find(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]monitor.Hook, error) {
	cur, err := s.hooks.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("find hooks: %w", err)
	}
	return readHooks(ctx, cur)
}

// isDuplicateKey reports whether a write error is a duplicate _id.
func isDuplicateKey(code int) bool { return code == 11000 || code == 11001 }

// errNotBulk is returned by bulkErrors for an error that says nothing of
// which writes were done.
var errNotBulk = errors.New("not a bulk write exception")

// bulkErrors splits the error of an unordered BulkWrite into the indexes of
// the writes that lost to a duplicate key and the first other error. For
// an error that is not a BulkWriteException (a network failure), it
// returns errNotBulk: any write may or may not have been done.
func bulkErrors(err error) (dups map[int]bool, other error) {
	if err == nil {
		return nil, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) {
		return nil, errors.Join(errNotBulk, err)
	}
	dups = map[int]bool{}
	for _, we := range bwe.WriteErrors {
		switch {
		case isDuplicateKey(we.Code):
			dups[we.Index] = true
		case other == nil && refusedForGood(we.Code):
			other = fmt.Errorf("%w: %w", monitor.ErrRejected, we)
		case other == nil:
			other = we
		}
	}
	if bwe.WriteConcernError != nil && other == nil {
		other = bwe.WriteConcernError
	}
	return dups, other
}

// refusedForGood reports whether a write error code says MongoDB will
// never take the document as it is: too large (BSONObjectTooLarge 10334),
// an index key too long (KeyTooLong 17280), or a value it does not accept
// (BadValue 2). Writing it again would fail again.
func refusedForGood(code int) bool {
	return code == 10334 || code == 17280 || code == 2
}
