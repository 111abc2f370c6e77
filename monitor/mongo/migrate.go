package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// DefaultMigrateBatch is how many documents Migrate converts per batch.
const DefaultMigrateBatch = 500

// MigrateOptions tune Migrate.
type MigrateOptions struct {
	// Batch is how many documents are read and written at a time
	// (DefaultMigrateBatch when 0 or less).
	Batch int
	// Pause is waited between batches, to spare a busy server.
	Pause time.Duration
}

// MigrateProgress is where a migration stands.
type MigrateProgress struct {
	// Total is the number of documents with an ObjectId _id (the older
	// monitor's, converted or not).
	Total int64
	// ToConvert is how many of them were in the older shape when the run
	// began.
	ToConvert int64
	// Converted is how many this run has converted so far.
	Converted int64
	// Unreadable counts the documents left as they are because they could
	// not be read (a field of another type than the older monitor wrote),
	// and Errors describes the first few.
	Unreadable int64
	Errors     []string
	// Elapsed is the time since the run began.
	Elapsed time.Duration
}

// Rate is the documents converted per second so far.
func (p MigrateProgress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Converted) / p.Elapsed.Seconds()
}

// Migrate converts the older monitor's documents in the hooks collection
// to this store's shape in place: the fields it wrote are kept (null
// error and delivered become "" and absent, external_id becomes
// externalId, __v goes), the fields it lacked are added as they read
// (see decodeObjectIDHook), and version is set to 1, which marks a
// converted document. The _id stays the ObjectId it was (MongoDB never
// changes an _id), so links to the older dashboard still find it, and
// the document reads exactly as before.
//
// It works in batches in _id order (a range of the _id index), each
// document converted by one update conditional on its having no version
// yet: a run killed at any point leaves every document either converted
// or not, and a run again converts the rest; a document converted by
// another run at the same time is not converted twice. A document that
// cannot be read is left as it is, counted and described in the
// progress, and the run goes on. progress, when
// not nil, is called after every batch.
//
// The documents' share of the statistics is in the legacy rollups, which
// Setup keeps, and is the same before and after: Migrate does not change
// the rollups.
func (s *Store) Migrate(ctx context.Context, opts MigrateOptions, progress func(MigrateProgress)) (MigrateProgress, error) {
	start := time.Now()
	var p MigrateProgress
	all := bson.D{{Key: "_id", Value: objectIDRange(minObjectID)}}
	var err error
	if p.Total, err = s.hooks.CountDocuments(ctx, all); err != nil {
		return p, fmt.Errorf("count the documents of the older monitor: %w", err)
	}
	if p.ToConvert, err = s.hooks.CountDocuments(ctx, append(all, unconverted)); err != nil {
		return p, fmt.Errorf("count the documents in the older shape: %w", err)
	}
	batch := opts.Batch
	if batch <= 0 {
		batch = DefaultMigrateBatch
	}
	report := func() {
		p.Elapsed = time.Since(start)
		if progress != nil {
			progress(p)
		}
	}
	after := minObjectID
	for p.ToConvert > 0 {
		raws, last, err := s.unconvertedAfter(ctx, after, batch)
		if err != nil {
			return p, err
		}
		if len(raws) == 0 {
			break
		}
		after = last
		n, err := s.convert(ctx, raws, &p)
		p.Converted += n
		if err != nil {
			return p, err
		}
		report()
		if opts.Pause > 0 {
			select {
			case <-ctx.Done():
				return p, ctx.Err()
			case <-time.After(opts.Pause):
			}
		}
	}
	p.Elapsed = time.Since(start)
	return p, nil
}

// unconverted selects the documents in the older shape: they have no
// version.
var unconverted = bson.E{Key: "version", Value: bson.D{{Key: "$exists", Value: false}}}

// unconvertedAfter reads up to n documents in the older shape with an
// ObjectId _id after after, in _id order, and returns the last _id read.
func (s *Store) unconvertedAfter(ctx context.Context, after bson.ObjectID, n int) ([]bson.Raw, bson.ObjectID, error) {
	cur, err := s.hooks.Find(ctx, bson.D{{Key: "_id", Value: objectIDRange(after)}, unconverted},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(n)))
	if err != nil {
		return nil, after, fmt.Errorf("find documents of the older monitor after %s: %w", after.Hex(), err)
	}
	var raws []bson.Raw
	if err := cur.All(ctx, &raws); err != nil {
		return nil, after, fmt.Errorf("read documents of the older monitor after %s: %w", after.Hex(), err)
	}
	last := after
	if len(raws) > 0 {
		last = raws[len(raws)-1].Lookup("_id").ObjectID()
	}
	return raws, last, nil
}

// maxMigrateErrors bounds the errors a MigrateProgress describes.
const maxMigrateErrors = 10

// convert writes the documents in this store's shape, each by one update
// conditional on its still having no version, and returns how many it
// converted. A document it cannot read is left as it is and counted in p.
func (s *Store) convert(ctx context.Context, raws []bson.Raw, p *MigrateProgress) (int64, error) {
	models := make([]mongo.WriteModel, 0, len(raws))
	for _, raw := range raws {
		oid := raw.Lookup("_id").ObjectID()
		h, err := decodeHook(raw)
		if err != nil {
			p.Unreadable++
			if len(p.Errors) < maxMigrateErrors {
				p.Errors = append(p.Errors, err.Error())
			}
			continue
		}
		b, err := bson.Marshal(h)
		if err != nil {
			return 0, fmt.Errorf("encode hook %s: %w", h.ID, err)
		}
		var doc bson.D
		if err := bson.Unmarshal(b, &doc); err != nil {
			return 0, fmt.Errorf("encode hook %s: %w", h.ID, err)
		}
		set := make(bson.D, 0, len(doc))
		for _, e := range doc {
			if e.Key != "_id" && e.Key != "version" {
				set = append(set, e)
			}
		}
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: oid}, unconverted}).
			SetUpdate(bson.D{
				{Key: "$set", Value: set},
				{Key: "$unset", Value: bson.D{{Key: "__v", Value: ""}, {Key: "external_id", Value: ""}}},
				{Key: "$inc", Value: bson.D{{Key: "version", Value: int64(1)}}},
			}))
	}
	if len(models) == 0 {
		return 0, nil
	}
	n, err := bulkInChunks(ctx, s.hooks, models)
	if err != nil {
		return n, fmt.Errorf("convert %d documents of the older monitor: %w", len(models), err)
	}
	return n, nil
}
