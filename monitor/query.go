package monitor

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks"
)

// Filter selects hooks. Zero fields select everything.
type Filter struct {
	// Statuses keeps the hooks whose status is one of these.
	Statuses []sendhooks.Status
	// CreatedFrom and CreatedTo bound created (both inclusive).
	CreatedFrom, CreatedTo time.Time
	// DeliveredFrom and DeliveredTo bound delivered (both inclusive).
	DeliveredFrom, DeliveredTo time.Time
	// Search keeps the hooks whose externalId or url contains it, ignoring
	// case. It is plain text, never a pattern.
	Search string
}

// bson is the filter as a MongoDB query. User input only ever appears as a
// value, never as a key or an operator.
func (f Filter) bson() bson.D {
	q := bson.D{}
	if len(f.Statuses) > 0 {
		statuses := make(bson.A, len(f.Statuses))
		for i, s := range f.Statuses {
			statuses[i] = string(s)
		}
		q = append(q, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: statuses}}})
	}
	if r := timeRange(f.CreatedFrom, f.CreatedTo); r != nil {
		q = append(q, bson.E{Key: "created", Value: r})
	}
	if r := timeRange(f.DeliveredFrom, f.DeliveredTo); r != nil {
		q = append(q, bson.E{Key: "delivered", Value: r})
	}
	if f.Search != "" {
		re := bson.Regex{Pattern: regexp.QuoteMeta(f.Search), Options: "i"}
		q = append(q, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "externalId", Value: re}},
			bson.D{{Key: "url", Value: re}},
		}})
	}
	return q
}

func timeRange(from, to time.Time) bson.D {
	var r bson.D
	if !from.IsZero() {
		r = append(r, bson.E{Key: "$gte", Value: from.UTC()})
	}
	if !to.IsZero() {
		r = append(r, bson.E{Key: "$lte", Value: to.UTC()})
	}
	return r
}

// newestFirst is the list's order: newest created first, ties by id.
var newestFirst = bson.D{{Key: "created", Value: -1}, {Key: "_id", Value: -1}}

// Page is a list of hooks and the number of all hooks the filter selects.
type Page struct {
	Hooks []Hook
	Total int64
}

// List returns the page (1-based) of limit hooks that the filter selects,
// newest created first.
func (s *Store) List(ctx context.Context, f Filter, page, limit int) (Page, error) {
	q := f.bson()
	total, err := s.hooks.CountDocuments(ctx, q)
	if err != nil {
		return Page{}, fmt.Errorf("count hooks: %w", err)
	}
	hooks, err := s.find(ctx, q, options.Find().SetSort(newestFirst).
		SetSkip(int64(page-1)*int64(limit)).SetLimit(int64(limit)))
	if err != nil {
		return Page{}, err
	}
	return Page{Hooks: hooks, Total: total}, nil
}

// Find returns at most max hooks that the filter selects, newest first.
func (s *Store) Find(ctx context.Context, f Filter, max int) ([]Hook, error) {
	return s.find(ctx, f.bson(), options.Find().SetSort(newestFirst).SetLimit(int64(max)))
}
