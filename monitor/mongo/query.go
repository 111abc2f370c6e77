package mongo

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sendhooks/sendhooks/monitor"
)

// searchWindow is monitor.SearchWindow; tests make it small.
var searchWindow = monitor.SearchWindow

// Get returns the hook whose _id is id (as a string, or as the ObjectId
// whose hex it is: the older monitor's documents), else the newest whose
// externalId (the producer's webhookId) is id, else the newest whose
// messageId is id. Each is a point lookup on an index: _id,
// {externalId,created}, {messageId,created}.
func (s *Store) Get(ctx context.Context, id string) (monitor.Hook, error) {
	if id == "" {
		// An empty externalId or messageId is no id: it would match every
		// hook without one.
		return monitor.Hook{}, fmt.Errorf("hook %q: %w", id, monitor.ErrNotFound)
	}
	for _, l := range lookups(id) {
		// The _id is unique: no sort needed, and none asked for, so that
		// the plan is the _id index alone.
		opts := options.Find().SetLimit(1)
		if l.Key != "_id" {
			opts.SetSort(bson.D{{Key: "created", Value: -1}})
		}
		hooks, err := s.find(ctx, bson.D{l}, opts)
		if err != nil {
			return monitor.Hook{}, fmt.Errorf("find hook by %s %q: %w", l.Key, id, err)
		}
		if len(hooks) > 0 {
			return hooks[0], nil
		}
	}
	return monitor.Hook{}, fmt.Errorf("hook %q: %w", id, monitor.ErrNotFound)
}

// lookups are the point lookups of an id, in the order tried: the _id
// as a string, as an ObjectId when it is one's hex, externalId, messageId.
func lookups(id string) []bson.E {
	out := []bson.E{{Key: "_id", Value: id}}
	if oid, err := bson.ObjectIDFromHex(id); err == nil && oid.Hex() == id {
		out = append(out, bson.E{Key: "_id", Value: oid})
	}
	return append(out, bson.E{Key: "externalId", Value: id}, bson.E{Key: "messageId", Value: id})
}

// List returns one page of the hooks q selects, newest created first.
//
// Pages are read by keyset (q.Older, q.Newer: a bound on the list's index)
// or by offset (skip over index entries, at most monitor.MaxOffset). With
// a search, hooks that carry the text as their id, webhookId or messageId
// are listed when there are any; otherwise the hooks whose webhookId or
// url contains it, among the newest monitor.SearchWindow hooks the other
// filters select after the cursor.
func (s *Store) List(ctx context.Context, q monitor.ListQuery) (monitor.Page, error) {
	if err := q.Validate(); err != nil {
		return monitor.Page{}, fmt.Errorf("list hooks: %w", err)
	}
	base := fieldsFilter(q.Filter)
	// A delivered range and a substring search have no index in the
	// list's order: they are looked for within the search window.
	var rest bson.D
	if r := timeRange(q.DeliveredFrom, q.DeliveredTo); r != nil {
		rest = append(rest, bson.E{Key: "delivered", Value: r})
	}
	if q.Search != "" {
		exact, capped, err := s.exactMatches(ctx, q.Search)
		if err != nil {
			return monitor.Page{}, err
		}
		// The other fields in Go: the exact matches are few. When none of
		// them passes, the text is searched as a substring.
		exact = slices.DeleteFunc(exact, func(h monitor.Hook) bool { return !q.MatchesFields(h) })
		if len(exact) > 0 {
			return exactPage(q, exact, capped), nil
		}
		// The text as a literal: QuoteMeta leaves no pattern in it.
		// MongoDB's "i" folds the case of more than ASCII letters (SQLite's
		// LIKE and monitor.SubstringMatch fold ASCII only), so a search
		// with non-ASCII letters may find a few more hooks here.
		re := bson.Regex{Pattern: regexp.QuoteMeta(q.Search), Options: "i"}
		rest = append(rest, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "externalId", Value: re}},
			bson.D{{Key: "url", Value: re}},
		}})
	}
	p, err := s.page(ctx, q, base, rest)
	if err != nil || q.NoTotal {
		return p, err
	}
	if rest == nil {
		p.Total, err = s.count(ctx, q.Filter)
		return p, err
	}
	// The total counts the matches in the window from the newest hook, so
	// that it is the same on every page.
	bound, err := s.windowBound(ctx, base, false)
	if err != nil {
		return p, err
	}
	f := and(base, rest)
	if bound != nil {
		f = and(f, notPast(*bound, false))
	}
	n, err := s.hooks.CountDocuments(ctx, f)
	if err != nil {
		return p, fmt.Errorf("count the hooks of the search window: %w", err)
	}
	p.Total, p.TotalAtLeast = n, p.TotalAtLeast || bound != nil
	return p, nil
}

// fieldsFilter is the filter's fields that an index serves in the list's
// order (statuses, the created range), as a query.
// User input only ever appears as a value, never as a key or an operator.
func fieldsFilter(f monitor.Filter) bson.D {
	q := bson.D{}
	switch len(f.Statuses) {
	case 0:
	case 1:
		q = append(q, bson.E{Key: "status", Value: string(f.Statuses[0])})
	default:
		// One $in: MongoDB plans it on {status,created,_id} as one index
		// scan per status merged in the list's order (SORT_MERGE), no SORT
		// stage, so a page reads its own index entries only.
		statuses := make(bson.A, len(f.Statuses))
		for i, st := range f.Statuses {
			statuses[i] = string(st)
		}
		q = append(q, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: statuses}}})
	}
	if r := timeRange(f.CreatedFrom, f.CreatedTo); r != nil {
		q = append(q, bson.E{Key: "created", Value: r})
	}
	return q
}

// timeRange is an inclusive range, nil when open at both ends.
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

// past selects the hooks after c in the list (older ones), or before it
// (newer ones) when newer is set. The range on created is what the index
// scan is bounded by; the $or only drops the hooks of c's own millisecond
// on the wrong side of its id. (A top-level {$or: [{created <c}, {created
// =c, _id <id}]} would leave the planner one index scan per branch and a
// merge, or none.)
func past(c pos, newer bool) bson.D {
	if newer {
		return keyset(c, "$gte", "$gt", "$gt")
	}
	return keyset(c, "$lte", "$lt", "$lt")
}

// notPast selects the hooks at c or before it in the direction given:
// the hooks of a search window that ends at c.
func notPast(c pos, newer bool) bson.D {
	if newer {
		return keyset(c, "$lte", "$lt", "$lte")
	}
	return keyset(c, "$gte", "$gt", "$gte")
}

// keyset is {created: {bound: c}, $or: [{created: {strict: c}}, {_id: {tie: id}}]}.
//
// MongoDB sorts every string _id before every ObjectId (the older
// monitor's), and compares only values of one type: the ids of the other
// type on the tie's side are added as a branch of their own.
func keyset(c pos, bound, strict, tie string) bson.D {
	created := c.created.UTC()
	or := bson.A{
		bson.D{{Key: "created", Value: bson.D{{Key: strict, Value: created}}}},
		bson.D{{Key: "_id", Value: bson.D{{Key: tie, Value: c.id}}}},
	}
	_, isOID := c.id.(bson.ObjectID)
	below := tie == "$lt" || tie == "$lte"
	switch {
	case isOID && below:
		or = append(or, bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: "string"}}}})
	case !isOID && !below:
		or = append(or, bson.D{{Key: "_id", Value: bson.D{{Key: "$type", Value: "objectId"}}}})
	}
	return bson.D{
		{Key: "created", Value: bson.D{{Key: bound, Value: created}}},
		{Key: "$or", Value: or},
	}
}

// and joins conditions that may name the same field (two created ranges,
// two $or) into one query.
func and(parts ...bson.D) bson.D {
	var all bson.A
	for _, p := range parts {
		if len(p) > 0 {
			all = append(all, p)
		}
	}
	switch len(all) {
	case 0:
		return bson.D{}
	case 1:
		return all[0].(bson.D)
	}
	return bson.D{{Key: "$and", Value: all}}
}

// page reads the page of q among the hooks base selects, narrowed by rest
// (a delivered range, a substring condition) within the search window
// when given.
func (s *Store) page(ctx context.Context, q monitor.ListQuery, base bson.D, rest bson.D) (monitor.Page, error) {
	var p monitor.Page
	newer := q.Newer != nil
	cursor := q.Older
	if newer {
		cursor = q.Newer
	}
	scope := base
	if cursor != nil {
		at, err := s.resolve(ctx, *cursor)
		if err != nil {
			return p, err
		}
		scope = and(base, past(at, newer))
	}
	filter := scope
	var bound *pos // where the search window ends, when it does not hold every hook
	if rest != nil {
		var err error
		if bound, err = s.windowBound(ctx, scope, newer); err != nil {
			return p, err
		}
		filter = and(scope, rest)
		if bound != nil {
			filter = and(filter, notPast(*bound, newer))
		}
	}
	opts := options.Find().SetSort(newestFirst).SetLimit(int64(q.Limit) + 1)
	if newer {
		opts.SetSort(oldestFirst)
	} else if cursor == nil && q.Offset > 0 {
		opts.SetSkip(int64(q.Offset))
	}
	hooks, err := s.find(ctx, filter, opts)
	if err != nil {
		return p, fmt.Errorf("list hooks: %w", err)
	}
	more := len(hooks) > q.Limit
	hooks = hooks[:min(len(hooks), q.Limit)]
	// Where the next page in the direction read goes on from: after the
	// last hook when there are more, or after the window when the search
	// stopped at its end.
	var next *monitor.Cursor
	switch {
	case more:
		next = monitor.CursorOf(hooks[len(hooks)-1])
	case bound != nil:
		next = bound.cursor()
		p.Partial = len(hooks) < q.Limit
		p.TotalAtLeast = p.Partial
	}
	if newer {
		slices.Reverse(hooks)
		p.Newer = next
		// The page starts older than the cursor's page began: it has
		// older neighbours when any hook is older than its last.
		at := q.Newer
		if len(hooks) > 0 {
			at = monitor.CursorOf(hooks[len(hooks)-1])
		}
		atPos, err := s.resolve(ctx, *at)
		if err != nil {
			return p, err
		}
		older, err := s.find(ctx, and(base, past(atPos, false)), options.Find().SetSort(newestFirst).SetLimit(1).
			SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "created", Value: 1}}))
		if err != nil {
			return p, fmt.Errorf("look for older hooks: %w", err)
		}
		if len(older) > 0 {
			p.Older = at
		}
	} else {
		p.Older = next
		if q.Older != nil || q.Offset > 0 {
			if len(hooks) > 0 {
				p.Newer = monitor.CursorOf(hooks[0])
			} else {
				p.Newer = q.Older
			}
		}
	}
	p.Hooks = hooks
	if p.Hooks == nil {
		p.Hooks = []monitor.Hook{}
	}
	return p, nil
}

// windowBound returns the position of the searchWindow-th hook of scope
// from its newest (from its oldest when newer is set), when the window
// does not hold every hook of scope; nil when it does. It reads index
// entries only: the sort is the index's order and the projection is in
// the index.
func (s *Store) windowBound(ctx context.Context, scope bson.D, newer bool) (*pos, error) {
	sort := newestFirst
	if newer {
		sort = oldestFirst
	}
	cur, err := s.hooks.Find(ctx, scope, options.Find().SetSort(sort).
		SetSkip(int64(searchWindow-1)).SetLimit(2).
		SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "created", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("find the end of the search window: %w", err)
	}
	var ends []bson.Raw
	if err := cur.All(ctx, &ends); err != nil {
		return nil, fmt.Errorf("read the end of the search window: %w", err)
	}
	if len(ends) < 2 {
		return nil, nil
	}
	p, err := rawPos(ends[0])
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// exactMatches returns the hooks whose _id, externalId or messageId is
// text: point lookups (lookups), on _id, {externalId,created} and
// {messageId,created}, at most monitor.MaxExactMatches hooks in all.
// capped says that the cap was reached.
func (s *Store) exactMatches(ctx context.Context, text string) (hooks []monitor.Hook, capped bool, err error) {
	seen := map[string]bool{}
	for _, l := range lookups(text) {
		field := l.Key
		left := monitor.MaxExactMatches - len(hooks)
		if left <= 0 {
			return hooks, true, nil
		}
		opts := options.Find().SetLimit(int64(left) + 1)
		if field != "_id" {
			opts.SetSort(bson.D{{Key: "created", Value: -1}})
		}
		found, err := s.find(ctx, bson.D{l}, opts)
		if err != nil {
			return nil, false, fmt.Errorf("find hooks by %s %q: %w", field, text, err)
		}
		for _, h := range found {
			if seen[h.ID] {
				continue
			}
			if len(hooks) == monitor.MaxExactMatches {
				return hooks, true, nil
			}
			seen[h.ID] = true
			hooks = append(hooks, h)
		}
	}
	return hooks, false, nil
}

// exactPage pages the hooks of an exact-id search, all of which pass the
// filter, in memory: they are at most monitor.MaxExactMatches.
func exactPage(q monitor.ListQuery, all []monitor.Hook, capped bool) monitor.Page {
	hooks := all
	slices.SortFunc(hooks, func(a, b monitor.Hook) int {
		return cmp.Or(created(b).Compare(created(a)), strings.Compare(b.ID, a.ID))
	})
	p := monitor.Page{Total: int64(len(hooks)), TotalAtLeast: capped, Hooks: []monitor.Hook{}}
	if q.NoTotal {
		p.Total, p.TotalAtLeast = 0, false
	}
	switch {
	case q.Newer != nil:
		i := slices.IndexFunc(hooks, func(h monitor.Hook) bool { return !isNewer(h, *q.Newer) })
		if i < 0 {
			i = len(hooks)
		}
		from := max(i-q.Limit, 0)
		p.Hooks = append(p.Hooks, hooks[from:i]...)
		if from > 0 {
			p.Newer = monitor.CursorOf(hooks[from])
		}
		if i < len(hooks) {
			p.Older = q.Newer
			if i > from {
				p.Older = monitor.CursorOf(hooks[i-1])
			}
		}
	default:
		from := min(q.Offset, len(hooks))
		if q.Older != nil {
			from = slices.IndexFunc(hooks, func(h monitor.Hook) bool { return q.Older.Before(created(h), h.ID) })
			if from < 0 {
				from = len(hooks)
			}
		}
		to := min(from+q.Limit, len(hooks))
		p.Hooks = append(p.Hooks, hooks[from:to]...)
		if to < len(hooks) {
			p.Older = monitor.CursorOf(hooks[to-1])
		}
		if q.Older != nil || q.Offset > 0 {
			if to > from {
				p.Newer = monitor.CursorOf(hooks[from])
			} else {
				p.Newer = q.Older
			}
		}
	}
	return p
}

// created is h's created time, zero when it has none.
func created(h monitor.Hook) time.Time {
	if h.Created == nil {
		return time.Time{}
	}
	return *h.Created
}

// isNewer reports whether h comes before c in the list.
func isNewer(h monitor.Hook, c monitor.Cursor) bool {
	return !c.Before(created(h), h.ID) && !(created(h).Equal(c.Created) && h.ID == c.ID)
}

// count is the number of hooks the filter (without search) selects.
//
// With statuses and a created range only, it sums the rollup counters of
// the range's whole hours and minutes and counts the hooks themselves only
// in the parts of a minute at its ends (monitor.CountSegments): a bounded
// read whatever the range holds.
func (s *Store) count(ctx context.Context, f monitor.Filter) (int64, error) {
	var statuses bson.A
	for _, st := range f.Statuses {
		statuses = append(statuses, string(st))
	}
	var total int64
	for _, seg := range monitor.CountSegments(f.CreatedFrom, f.CreatedTo) {
		if seg.Kind == "" {
			q := bson.D{{Key: "created", Value: bson.D{{Key: "$gte", Value: seg.From}, {Key: "$lt", Value: seg.To}}}}
			if statuses != nil {
				q = append(bson.D{{Key: "status", Value: bson.D{{Key: "$in", Value: statuses}}}}, q...)
			}
			n, err := s.hooks.CountDocuments(ctx, q)
			if err != nil {
				return 0, fmt.Errorf("count hooks created in [%v, %v): %w", seg.From, seg.To, err)
			}
			total += n
			continue
		}
		q := bson.D{
			{Key: "kind", Value: string(seg.Kind)},
			{Key: "bucket", Value: bson.D{{Key: "$gte", Value: seg.From}, {Key: "$lt", Value: seg.To}}},
		}
		if statuses != nil {
			q = append(q, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: statuses}}})
		}
		rows, err := s.readRollups(ctx, q)
		if err != nil {
			return 0, err
		}
		for _, r := range rows {
			total += r.N
		}
	}
	return total, nil
}
