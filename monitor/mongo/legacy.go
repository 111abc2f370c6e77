package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks/monitor"
)

// Documents of the older monitor (sendhooks-monitoring, Node and
// Mongoose) share the hooks collection with this store's: the default
// MONGODB_URI names the same database. Each was written once per status
// event, as
//
//	{_id: ObjectId, id: "<status-stream entry id>", url, status,
//	 created: Date, delivered: Date|null, error: string|null,
//	 externalId: string, __v: 0}
//
// (versions of May 2024 named externalId external_id). They are read as
// they are: the ObjectId's hex is the hook's ID, and the sort, keyset
// cursors, filters and indexes work on them since they keep created,
// status, delivered, url and externalId under the names this store uses.
// `sendhooks-monitor migrate` (Migrate) rewrites them in this store's
// shape, keeping their ObjectId _id, which MongoDB never changes in place.
//
// A hook with an ObjectId _id counts in rollup counters of its own, the
// legacy counters (legacyPrefix before the counter's _id): they are
// computed from the documents a created hour at a time and set, not
// added to, so that building them again is exact and a build cut short
// is simply done again (buildLegacyRollups). Prune takes a removed
// hook's share from the counters it counts in.

// legacyPrefix starts the _id of a legacy rollup counter.
const legacyPrefix = "legacy|"

// legacyPrefixEnd is the first string after every one legacyPrefix starts.
const legacyPrefixEnd = "legacy}"

// MetaCollection holds the store's own bookkeeping: how far the legacy
// rollups have been built.
const MetaCollection = "meta"

// legacyRollupsState is the _id of the meta document of the legacy
// rollups; its field through is the largest ObjectId counted.
const legacyRollupsState = "legacyRollups"

// The bounds of the ObjectIds: a range on _id between them selects the
// documents with an ObjectId _id, read from the _id index (MongoDB
// compares values of one type only, so strings never match it).
var (
	minObjectID = bson.ObjectID{}
	maxObjectID = bson.ObjectID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// objectIDRange selects the documents with an ObjectId _id after after.
func objectIDRange(after bson.ObjectID) bson.D {
	op := "$gt"
	if after == minObjectID {
		op = "$gte"
	}
	return bson.D{{Key: op, Value: after}, {Key: "$lte", Value: maxObjectID}}
}

// decodeObjectIDHook reads a document whose _id is an ObjectId: the older
// monitor's, or one Migrate converted. The null values the older monitor
// wrote (error, delivered) read as absent, its __v is dropped, its
// external_id read as externalId, and the fields it lacked get the values
// Migrate writes, so that a document reads the same before and after.
func decodeObjectIDHook(raw bson.Raw, oid bson.ObjectID) (monitor.Hook, error) {
	var h monitor.Hook
	elems, err := raw.Elements()
	if err != nil {
		return h, fmt.Errorf("decode hook %s: %w", oid.Hex(), err)
	}
	doc := make(bson.D, 0, len(elems))
	var snakeExternalID string
	for _, e := range elems {
		k, v := e.Key(), e.Value()
		switch {
		case k == "_id":
			doc = append(doc, bson.E{Key: k, Value: oid.Hex()})
		case v.Type == bson.TypeNull, k == "__v":
		case k == "external_id":
			snakeExternalID, _ = v.StringValueOK()
		default:
			doc = append(doc, bson.E{Key: k, Value: v})
		}
	}
	b, err := bson.Marshal(doc)
	if err == nil {
		err = bson.Unmarshal(b, &h)
	}
	if err != nil {
		return h, fmt.Errorf("decode hook %s: %w", oid.Hex(), err)
	}
	if h.IDCopy == "" {
		h.IDCopy = h.ID
	}
	if h.ExternalID == "" {
		h.ExternalID = snakeExternalID
	}
	if h.Attempts == nil {
		h.Attempts = []monitor.Attempt{}
	}
	if h.UpdatedAt.IsZero() {
		// The older monitor wrote a document once: when it was delivered,
		// or failed, and at the latest when it was created.
		if h.Created != nil {
			h.UpdatedAt = *h.Created
		}
		if h.Delivered != nil && h.Delivered.After(h.UpdatedAt) {
			h.UpdatedAt = *h.Delivered
		}
	}
	return h, nil
}

// pos is a place in the list's order: a created time and an _id as it is
// stored, a string or an ObjectId.
type pos struct {
	created time.Time
	id      any
}

// cursor is p as the monitor package knows it.
func (p pos) cursor() *monitor.Cursor {
	c := &monitor.Cursor{Created: p.created}
	switch id := p.id.(type) {
	case bson.ObjectID:
		c.ID = id.Hex()
	case string:
		c.ID = id
	}
	return c
}

// resolve is the place of the cursor c. An id that reads as an ObjectId
// is one when a document with that ObjectId _id and c's created time
// exists (one point lookup on the _id index); otherwise, and for every
// other id, the id is a string.
func (s *Store) resolve(ctx context.Context, c monitor.Cursor) (pos, error) {
	p := pos{created: c.Created.UTC(), id: c.ID}
	oid, err := bson.ObjectIDFromHex(c.ID)
	if err != nil || oid.Hex() != c.ID {
		return p, nil
	}
	var doc struct {
		Created time.Time `bson:"created"`
	}
	err = s.hooks.FindOne(ctx, bson.D{{Key: "_id", Value: oid}},
		options.FindOne().SetProjection(bson.D{{Key: "created", Value: 1}})).Decode(&doc)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return p, nil
	case err != nil:
		return p, fmt.Errorf("find hook %s of a cursor: %w", c.ID, err)
	}
	if doc.Created.Equal(p.created) {
		p.id = oid
	}
	return p, nil
}

// posOf is the place of h.
func (s *Store) posOf(ctx context.Context, h monitor.Hook) (pos, error) {
	return s.resolve(ctx, *monitor.CursorOf(h))
}

// rawPos reads a place from a document holding at least _id and created.
func rawPos(raw bson.Raw) (pos, error) {
	var p pos
	idv, err := raw.LookupErr("_id")
	if err != nil {
		return p, fmt.Errorf("read the _id of a hook: %w", err)
	}
	if oid, ok := idv.ObjectIDOK(); ok {
		p.id = oid
	} else if str, ok := idv.StringValueOK(); ok {
		p.id = str
	} else {
		return p, fmt.Errorf("hook _id %s is neither a string nor an ObjectId", idv)
	}
	if t, ok := raw.Lookup("created").TimeOK(); ok {
		p.created = t.UTC()
	}
	return p, nil
}

// buildLegacyRollups counts the documents with an ObjectId _id after the
// one the meta document names in the legacy counters: it finds the
// created hours they fall in (one read of them on the _id index), then
// sets every legacy counter of each of those hours from the documents of
// the hour (a range of the {created,_id} index) and last records the
// largest ObjectId counted. Nothing of the documents is written. A build
// cut short leaves counters that are right for each hour it finished, and
// is done again whole at the next Setup.
func (s *Store) buildLegacyRollups(ctx context.Context) error {
	var state struct {
		Through bson.ObjectID `bson:"through"`
	}
	err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: legacyRollupsState}}).Decode(&state)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("read the state of the legacy rollups: %w", err)
	}
	hours, last, err := s.legacyHours(ctx, state.Through)
	if err != nil || len(hours) == 0 {
		return err
	}
	for _, h := range hours {
		if err := s.setLegacyHour(ctx, h); err != nil {
			return err
		}
	}
	_, err = s.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: legacyRollupsState}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "through", Value: last}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("record the state of the legacy rollups: %w", err)
	}
	return nil
}

// legacyHours returns the created hours of the documents with an ObjectId
// _id after after, oldest first, and the largest such _id.
func (s *Store) legacyHours(ctx context.Context, after bson.ObjectID) ([]time.Time, bson.ObjectID, error) {
	last := after
	cur, err := s.hooks.Find(ctx, bson.D{{Key: "_id", Value: objectIDRange(after)}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "created", Value: 1}}))
	if err != nil {
		return nil, last, fmt.Errorf("find the documents of the older monitor: %w", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	seen := map[time.Time]bool{}
	for cur.Next(ctx) {
		p, err := rawPos(cur.Current)
		if err != nil {
			return nil, last, err
		}
		if oid, ok := p.id.(bson.ObjectID); ok && oid.Hex() > last.Hex() {
			last = oid
		}
		if !p.created.IsZero() {
			seen[p.created.Truncate(time.Hour)] = true
		}
	}
	if err := cur.Err(); err != nil {
		return nil, last, fmt.Errorf("read the documents of the older monitor: %w", err)
	}
	hours := make([]time.Time, 0, len(seen))
	for h := range seen {
		hours = append(hours, h)
	}
	slices.SortFunc(hours, time.Time.Compare)
	return hours, last, nil
}

// setLegacyHour sets the legacy counters of the created hour from the
// documents with an ObjectId _id created in it; a counter of the hour
// that no document counts in any more is set to 0.
func (s *Store) setLegacyHour(ctx context.Context, hour time.Time) error {
	end := hour.Add(time.Hour)
	hooks, err := s.find(ctx, bson.D{
		{Key: "created", Value: bson.D{{Key: "$gte", Value: hour}, {Key: "$lt", Value: end}}},
		{Key: "_id", Value: objectIDRange(minObjectID)},
	}, options.Find())
	if err != nil {
		return fmt.Errorf("read the older monitor's hooks of the hour %v: %w", hour, err)
	}
	delta := monitor.RollupDelta{}
	for i := range hooks {
		delta.Change(nil, &hooks[i])
	}
	cur, err := s.rollups.Find(ctx, bson.D{
		{Key: "kind", Value: bson.D{{Key: "$in", Value: bson.A{
			string(monitor.RollupMinute), string(monitor.RollupHour), string(monitor.RollupReceiver), string(monitor.RollupLatency),
		}}}},
		{Key: "bucket", Value: bson.D{{Key: "$gte", Value: hour}, {Key: "$lt", Value: end}}},
		{Key: "_id", Value: bson.D{{Key: "$gte", Value: legacyPrefix}, {Key: "$lt", Value: legacyPrefixEnd}}},
	})
	if err != nil {
		return fmt.Errorf("find the legacy rollups of the hour %v: %w", hour, err)
	}
	var stale []rollupDoc
	if err := cur.All(ctx, &stale); err != nil {
		return fmt.Errorf("read the legacy rollups of the hour %v: %w", hour, err)
	}
	set := map[monitor.RollupKey]int64{}
	for _, d := range stale {
		set[d.row().RollupKey] = 0
	}
	for k, n := range delta {
		set[k] = n
	}
	retention := time.Duration(s.retention.Load())
	var models []mongo.WriteModel
	for k, n := range set {
		fields := rollupFields(k)
		fields = append(fields, bson.E{Key: "n", Value: n})
		if retention > 0 {
			fields = append(fields, bson.E{Key: "expireAt", Value: k.Bucket.UTC().Add(k.Kind.Width() + retention)})
		}
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: legacyPrefix + rollupID(k)}}).
			SetUpdate(bson.D{{Key: "$set", Value: fields}}).
			SetUpsert(true))
	}
	if len(models) == 0 {
		return nil
	}
	if _, err := bulkInChunks(ctx, s.rollups, models); err != nil {
		return fmt.Errorf("set %d legacy rollups of the hour %v: %w", len(models), hour, err)
	}
	return nil
}

// writeChunk bounds the updates sent in one command by bulkInChunks.
// FerretDB v1 holds a database connection for each update of a command
// until the command ends, from a pool of 100: a command of 100 updates
// or more waits for itself forever.
const writeChunk = 64

// bulkInChunks runs the writes as unordered BulkWrites of writeChunk
// writes each, and returns how many documents they modified.
func bulkInChunks(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel) (int64, error) {
	var modified int64
	for len(models) > 0 {
		n := min(len(models), writeChunk)
		res, err := coll.BulkWrite(ctx, models[:n], options.BulkWrite().SetOrdered(false))
		if res != nil {
			modified += res.ModifiedCount
		}
		if err != nil {
			return modified, err
		}
		models = models[n:]
	}
	return modified, nil
}

// rollupFields are the fields of a counter's key as stored.
func rollupFields(k monitor.RollupKey) bson.D {
	return bson.D{
		{Key: "kind", Value: string(k.Kind)},
		{Key: "bucket", Value: k.Bucket.UTC()},
		{Key: "status", Value: string(k.Status)},
		{Key: "url", Value: k.URL},
		{Key: "bin", Value: k.Bin},
	}
}
