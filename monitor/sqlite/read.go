package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// searchWindow is monitor.SearchWindow; tests make it small.
var searchWindow = monitor.SearchWindow

// Get looks the id up as a hook id (primary key), then as the newest
// hook's producer webhookId (hooks_external), then as the newest hook's
// messageId (hooks_message).
func (s *Store) Get(ctx context.Context, id string) (monitor.Hook, error) {
	if id == "" {
		// An empty external_id or message_id is no id: it would match
		// any hook without one.
		return monitor.Hook{}, fmt.Errorf("hook %q: %w", id, monitor.ErrNotFound)
	}
	for _, q := range []string{
		`SELECT doc FROM hooks WHERE id = ?`,
		`SELECT doc FROM hooks INDEXED BY hooks_external WHERE external_id = ? ORDER BY created DESC LIMIT 1`,
		`SELECT doc FROM hooks INDEXED BY hooks_message WHERE message_id = ? ORDER BY created DESC LIMIT 1`,
	} {
		rows, err := s.r.QueryContext(ctx, q, id)
		if err != nil {
			return monitor.Hook{}, fmt.Errorf("find hook %q: %w", id, err)
		}
		hooks, err := scanDocs(rows)
		if err != nil {
			return monitor.Hook{}, fmt.Errorf("find hook %q: %w", id, err)
		}
		if len(hooks) > 0 {
			return hooks[0], nil
		}
	}
	return monitor.Hook{}, fmt.Errorf("hook %q: %w", id, monitor.ErrNotFound)
}

// List answers one page of the list. See docs/monitor.md for how each
// shape of query stays bounded.
func (s *Store) List(ctx context.Context, q monitor.ListQuery) (monitor.Page, error) {
	if err := q.Validate(); err != nil {
		return monitor.Page{}, err
	}
	if q.Search != "" {
		exact, capped, err := s.exact(ctx, q.Filter)
		if err != nil {
			return monitor.Page{}, err
		}
		if len(exact) > 0 {
			page := pageOf(exact, q)
			page.Total, page.TotalAtLeast = int64(len(exact)), capped
			if q.NoTotal {
				page.Total, page.TotalAtLeast = 0, false
			}
			return page, nil
		}
	}
	if q.Search != "" || !q.DeliveredFrom.IsZero() || !q.DeliveredTo.IsZero() {
		return s.windowed(ctx, q)
	}
	page, err := s.indexed(ctx, q)
	if err != nil || q.NoTotal {
		return page, err
	}
	page.Total, err = s.count(ctx, q.Filter)
	return page, err
}

// exact returns the hooks whose id, webhookId or messageId is the search
// text and that pass the other filters, newest first, at most
// MaxExactMatches of them (capped says when there were more).
func (s *Store) exact(ctx context.Context, f monitor.Filter) (hooks []monitor.Hook, capped bool, err error) {
	rows, err := s.r.QueryContext(ctx, `SELECT doc FROM hooks WHERE id = ?1
UNION SELECT doc FROM (SELECT doc FROM hooks INDEXED BY hooks_external WHERE external_id = ?1 ORDER BY created DESC LIMIT ?2)
UNION SELECT doc FROM (SELECT doc FROM hooks INDEXED BY hooks_message WHERE message_id = ?1 ORDER BY created DESC LIMIT ?2)`,
		f.Search, monitor.MaxExactMatches+1)
	if err != nil {
		return nil, false, fmt.Errorf("look the search up as an id: %w", err)
	}
	all, err := scanDocs(rows)
	if err != nil {
		return nil, false, err
	}
	seen := map[string]bool{}
	for _, h := range all {
		if !seen[h.ID] && f.MatchesFields(h) {
			seen[h.ID] = true
			hooks = append(hooks, h)
		}
	}
	sortNewestFirst(hooks)
	if len(hooks) > monitor.MaxExactMatches {
		hooks, capped = hooks[:monitor.MaxExactMatches], true
	}
	return hooks, capped, nil
}

// pageOf pages hooks, sorted newest first, as q asks.
func pageOf(hooks []monitor.Hook, q monitor.ListQuery) monitor.Page {
	var page monitor.Page
	switch {
	case q.Older != nil:
		i := 0
		for i < len(hooks) && !q.Older.Before(created(hooks[i]), hooks[i].ID) {
			i++
		}
		hooks, page.Newer = hooks[i:], q.Older
	case q.Newer != nil:
		i := len(hooks)
		for i > 0 && !newer(hooks[i-1], q.Newer) {
			i--
		}
		if i > q.Limit {
			page.Newer = monitor.CursorOf(hooks[i-q.Limit])
		}
		hooks = hooks[max(0, i-q.Limit):i]
		if len(hooks) > 0 {
			page.Older = monitor.CursorOf(hooks[len(hooks)-1])
		}
		page.Hooks = hooks
		return page
	default:
		if q.Offset > 0 && len(hooks) > 0 {
			page.Newer = &monitor.Cursor{} // not the first page
		}
		hooks = hooks[min(q.Offset, len(hooks)):]
	}
	if len(hooks) > q.Limit {
		page.Older = monitor.CursorOf(hooks[q.Limit-1])
		hooks = hooks[:q.Limit]
	}
	page.Hooks = hooks
	if page.Newer != nil && page.Newer.ID == "" && len(hooks) > 0 {
		page.Newer = monitor.CursorOf(hooks[0])
	}
	return page
}

func created(h monitor.Hook) time.Time {
	if h.Created == nil {
		return time.Time{}
	}
	return *h.Created
}

// newer reports whether h comes before c in the list.
func newer(h monitor.Hook, c *monitor.Cursor) bool {
	t := created(h)
	if !t.Equal(c.Created) {
		return t.After(c.Created)
	}
	return h.ID > c.ID
}

func sortNewestFirst(hooks []monitor.Hook) {
	slices.SortFunc(hooks, func(a, b monitor.Hook) int {
		return cmp.Or(created(b).Compare(created(a)), cmp.Compare(b.ID, a.ID))
	})
}

// where is a WHERE clause under construction.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// position adds the created range, and the cursor, to w.
func position(w *where, q monitor.ListQuery) {
	if !q.CreatedFrom.IsZero() {
		w.add("created >= ?", ms(q.CreatedFrom))
	}
	if !q.CreatedTo.IsZero() {
		w.add("created <= ?", ms(q.CreatedTo))
	}
	switch {
	case q.Older != nil:
		w.add("(created, id) < (?, ?)", ms(q.Older.Created), q.Older.ID)
	case q.Newer != nil:
		w.add("(created, id) > (?, ?)", ms(q.Newer.Created), q.Newer.ID)
	}
}

// candidates is the SQL of the (created, id, delivered, external_id,
// url) of the hooks at [offset, offset + n) in list order (reversed for a
// Newer query) that the statuses, the created range and the cursor select.
// Each status walks hooks_status, or with no status filter hooks_created;
// both indexes hold every column selected, so the query reads index
// entries only: offset + n of them per status.
func candidates(q monitor.ListQuery, n, offset int) (string, []any) {
	dir := "DESC"
	if q.Newer != nil {
		dir = "ASC"
	}
	order := " ORDER BY created " + dir + ", id " + dir
	const cols = "SELECT created, id, delivered, external_id, url FROM hooks INDEXED BY "
	one := func(status sendhooks.Status, limit string, args ...any) (string, []any) {
		w := where{}
		index := "hooks_created"
		if status != "" {
			index = "hooks_status"
			w.add("status = ?", string(status))
		}
		position(&w, q)
		return cols + index + w.String() + order + limit, append(w.args, args...)
	}
	if len(q.Statuses) <= 1 {
		var st sendhooks.Status
		if len(q.Statuses) == 1 {
			st = q.Statuses[0]
		}
		return one(st, " LIMIT ? OFFSET ?", n, offset)
	}
	var parts []string
	var args []any
	for _, st := range q.Statuses {
		sql, a := one(st, " LIMIT ?", offset+n)
		parts = append(parts, "SELECT * FROM ("+sql+")")
		args = append(args, a...)
	}
	return "SELECT * FROM (" + strings.Join(parts, " UNION ALL ") + ")" + order + " LIMIT ? OFFSET ?", append(args, n, offset)
}

// indexed answers a list whose filters an index serves: it reads
// offset + limit + 1 index entries per status and limit + 1 hooks.
func (s *Store) indexed(ctx context.Context, q monitor.ListQuery) (monitor.Page, error) {
	offset := q.Offset
	if q.Older != nil || q.Newer != nil {
		offset = 0
	}
	cand, args := candidates(q, q.Limit+1, offset)
	dir := "DESC"
	if q.Newer != nil {
		dir = "ASC"
	}
	rows, err := s.r.QueryContext(ctx, `SELECT h.doc FROM (`+cand+`) c JOIN hooks h ON h.id = c.id
ORDER BY c.created `+dir+`, c.id `+dir, args...)
	if err != nil {
		return monitor.Page{}, fmt.Errorf("list hooks: %w", err)
	}
	hooks, err := scanDocs(rows)
	if err != nil {
		return monitor.Page{}, err
	}
	return shape(hooks, q, offset), nil
}

// shape turns up to limit + 1 hooks read in query order into a page.
func shape(hooks []monitor.Hook, q monitor.ListQuery, offset int) monitor.Page {
	var page monitor.Page
	more := len(hooks) > q.Limit
	hooks = hooks[:min(len(hooks), q.Limit)]
	if q.Newer != nil {
		slices.Reverse(hooks)
	}
	page.Hooks = hooks
	if len(hooks) == 0 {
		return page
	}
	first, last := monitor.CursorOf(hooks[0]), monitor.CursorOf(hooks[len(hooks)-1])
	switch {
	case q.Newer != nil:
		page.Older = last
		if more {
			page.Newer = first
		}
	default:
		if more {
			page.Older = last
		}
		if q.Older != nil || offset > 0 {
			page.Newer = first
		}
	}
	return page
}

// windowed answers a list with a filter no index serves in list order (a
// substring search, a delivered range): it looks through the newest
// SearchWindow hooks that the indexed filters select after the cursor,
// reading index entries only (hooks_created and hooks_status hold the
// columns tested), and says when it reached that window's end.
//
// The page streams: the window's entries are read in list order until
// the page is full. The count, when asked for, reads the whole window
// once; the window's far end is found by skipping through the index.
func (s *Store) windowed(ctx context.Context, q monitor.ListQuery) (monitor.Page, error) {
	offset := q.Offset
	if q.Older != nil || q.Newer != nil {
		offset = 0
	}
	cand, args := candidates(q, searchWindow, 0)
	rest := where{}
	if q.Search != "" {
		needle := monitor.FoldASCII(q.Search)
		rest.add("(instr(lower(external_id), ?) > 0 OR instr(lower(url), ?) > 0)", needle, needle)
	}
	if !q.DeliveredFrom.IsZero() {
		rest.add("delivered >= ?", ms(q.DeliveredFrom))
	}
	if !q.DeliveredTo.IsZero() {
		rest.add("delivered <= ?", ms(q.DeliveredTo))
	}
	dir := "DESC"
	if q.Newer != nil {
		dir = "ASC"
	}
	rows, err := s.r.QueryContext(ctx, `SELECT h.doc FROM (SELECT created, id FROM (`+cand+`)`+rest.String()+` LIMIT ? OFFSET ?) p
JOIN hooks h ON h.id = p.id ORDER BY p.created `+dir+`, p.id `+dir, append(append(args, rest.args...), q.Limit+1, offset)...)
	if err != nil {
		return monitor.Page{}, fmt.Errorf("search hooks: %w", err)
	}
	hooks, err := scanDocs(rows)
	if err != nil {
		return monitor.Page{}, err
	}
	page := shape(hooks, q, offset)
	if q.NoTotal && (page.Older != nil || q.Newer != nil) {
		return page, nil
	}
	var matches, window int64
	// The test comes before the window in the statement, and so do its
	// arguments.
	err = s.r.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(CASE WHEN `+strings.Join(rest.conds, " AND ")+` THEN 1 ELSE 0 END), 0) FROM (`+cand+`)`,
		append(slices.Clone(rest.args), args...)...).Scan(&window, &matches)
	if err != nil {
		return monitor.Page{}, fmt.Errorf("count search results: %w", err)
	}
	full := window >= int64(searchWindow)
	if !q.NoTotal {
		page.Total, page.TotalAtLeast = matches, full
	}
	// The window ended before the page found one hook more than it shows:
	// older hooks may match, and the next page goes on from the window's
	// far end.
	if full && page.Older == nil && q.Newer == nil {
		last, largs := candidates(q, 1, searchWindow-1)
		var c monitor.Cursor
		var created int64
		if err := s.r.QueryRowContext(ctx, `SELECT created, id FROM (`+last+`)`, largs...).Scan(&created, &c.ID); err != nil {
			return monitor.Page{}, fmt.Errorf("find the end of the search window: %w", err)
		}
		c.Created = time.UnixMilli(created).UTC()
		page.Partial, page.Older = true, &c
	}
	return page, nil
}

// count counts the hooks a filter of statuses and a created range selects:
// whole hours and minutes from the rollups, the rest of a minute at each
// end from hooks_status or hooks_created (monitor.CountSegments).
func (s *Store) count(ctx context.Context, f monitor.Filter) (int64, error) {
	statuses := statusArgs(f)
	var total int64
	for _, seg := range monitor.CountSegments(f.CreatedFrom, f.CreatedTo) {
		var (
			query string
			args  []any
		)
		if seg.Kind != "" {
			query = `SELECT coalesce(sum(n), 0) FROM rollups WHERE kind = ? AND bucket >= ? AND bucket < ? AND status IN (` + marks(len(statuses)) + `)`
			args = []any{string(seg.Kind), ms(seg.From), ms(seg.To)}
		} else {
			query = `SELECT count(*) FROM hooks INDEXED BY hooks_status WHERE status IN (` + marks(len(statuses)) + `) AND created >= ? AND created < ?`
		}
		for _, st := range statuses {
			args = append(args, string(st))
		}
		if seg.Kind == "" {
			args = append(args, ms(seg.From), ms(seg.To))
		}
		var n int64
		if err := s.r.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			return 0, fmt.Errorf("count hooks: %w", err)
		}
		total += n
	}
	return total, nil
}

// Stats reads the rollups of the query's range (a range of the rollups'
// primary key per kind), summing the hourly receiver and latency counters
// of the range in SQL, and assembles the statistics.
func (s *Store) Stats(ctx context.Context, q monitor.StatsQuery) (monitor.Stats, error) {
	var rows []monitor.RollupRow
	for _, kind := range []monitor.RollupKind{q.CountKind(), monitor.RollupReceiver, monitor.RollupLatency} {
		from, to := q.RollupRange(kind.Width())
		query := `SELECT bucket, status, url, bin, n FROM rollups WHERE kind = ?1 AND bucket >= ?2 AND bucket <= ?3`
		if kind != q.CountKind() {
			// Only the sums over the range count: one row per receiver
			// and status, or per bin, dated at the range's first bucket.
			query = `SELECT ?2, status, url, bin, sum(n) FROM rollups WHERE kind = ?1 AND bucket >= ?2 AND bucket <= ?3 GROUP BY status, url, bin`
		}
		res, err := s.r.QueryContext(ctx, query, string(kind), ms(from), ms(to))
		if err != nil {
			return monitor.Stats{}, fmt.Errorf("read %s rollups: %w", kind, err)
		}
		for res.Next() {
			r := monitor.RollupRow{RollupKey: monitor.RollupKey{Kind: kind}}
			var bucket int64
			var status string
			if err := res.Scan(&bucket, &status, &r.URL, &r.Bin, &r.N); err != nil {
				res.Close()
				return monitor.Stats{}, fmt.Errorf("read %s rollups: %w", kind, err)
			}
			r.Bucket, r.Status = time.UnixMilli(bucket).UTC(), sendhooks.Status(status)
			rows = append(rows, r)
		}
		if err := res.Err(); err != nil {
			res.Close()
			return monitor.Stats{}, fmt.Errorf("read %s rollups: %w", kind, err)
		}
		res.Close()
	}
	return monitor.BuildStats(q, rows), nil
}
