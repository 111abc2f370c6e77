package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sendhooks/sendhooks/monitor"
)

// maxVars bounds the parameters of one statement (SQLite allows 32766).
const maxVars = 500

// Apply merges the events into their hooks and the rollups in one
// transaction: it reads the hooks the events belong to, merges the events
// in, and writes the hooks that changed with the difference they make to
// the rollups. An event already merged changes nothing, so applying a
// batch again writes nothing.
func (s *Store) Apply(ctx context.Context, events []monitor.Event) error {
	if len(events) == 0 {
		return nil
	}
	byKey := map[string][]monitor.Event{}
	var keys []string
	for _, ev := range events {
		k := ev.Key()
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], ev)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		stored, err := load(ctx, tx, keys)
		if err != nil {
			return err
		}
		delta := monitor.RollupDelta{}
		var changed []*monitor.Hook
		for _, k := range keys {
			old := stored[k]
			h := &monitor.Hook{}
			if old != nil {
				copyHook := *old
				copyHook.Attempts = append([]monitor.Attempt(nil), old.Attempts...)
				h = &copyHook
			}
			dirty := false
			for _, ev := range byKey[k] {
				dirty = h.Apply(ev) || dirty
			}
			if dirty {
				if err := h.CheckLimits(); err != nil {
					return fmt.Errorf("hook %.64q: %w", k, err)
				}
				h.Version++
				changed = append(changed, h)
				delta.Change(old, h)
			}
		}
		if err := s.upsertHooks(ctx, tx, changed); err != nil {
			return err
		}
		return s.addRollups(ctx, tx, delta)
	})
}

// write runs fn in a transaction of the writer.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin a write to %s: %w", s.path, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit a write to %s: %w", s.path, err)
	}
	return nil
}

// load reads the stored hooks of keys.
func load(ctx context.Context, tx *sql.Tx, keys []string) (map[string]*monitor.Hook, error) {
	out := make(map[string]*monitor.Hook, len(keys))
	for start := 0; start < len(keys); start += maxVars {
		part := keys[start:min(start+maxVars, len(keys))]
		args := make([]any, len(part))
		for i, k := range part {
			args[i] = k
		}
		rows, err := tx.QueryContext(ctx, "SELECT doc FROM hooks WHERE id IN ("+marks(len(part))+")", args...)
		if err != nil {
			return nil, fmt.Errorf("read %d hooks: %w", len(part), err)
		}
		hooks, err := scanDocs(rows)
		if err != nil {
			return nil, err
		}
		for i := range hooks {
			out[hooks[i].ID] = &hooks[i]
		}
	}
	return out, nil
}

// The writes are multi-row statements, rowsPerWrite rows each: the driver
// (modernc.org/sqlite) parses a statement again on every execution, so
// one statement per row spent a fifth of ingestion parsing.
const rowsPerWrite = 64

// upsertHooks writes the hooks, inserting new ones and replacing the
// stored ones.
func (s *Store) upsertHooks(ctx context.Context, tx *sql.Tx, hooks []*monitor.Hook) error {
	for start := 0; start < len(hooks); start += rowsPerWrite {
		part := hooks[start:min(start+rowsPerWrite, len(hooks))]
		args := make([]any, 0, 8*len(part))
		for _, h := range part {
			r, err := rowOf(h)
			if err != nil {
				return err
			}
			args = append(args, r.id, r.created, r.status, r.delivered, r.url, r.externalID, r.messageID, r.doc)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO hooks (id, created, status, delivered, url, external_id, message_id, doc) VALUES `+
			rows(len(part), 8)+`
ON CONFLICT (id) DO UPDATE SET created = excluded.created, status = excluded.status,
	delivered = excluded.delivered, url = excluded.url, external_id = excluded.external_id,
	message_id = excluded.message_id, doc = excluded.doc`, args...)
		if err != nil {
			return fmt.Errorf("write %d hooks: %w", len(part), err)
		}
	}
	return nil
}

// addRollups adds delta to the rollups and removes the counters it brings
// to zero.
func (s *Store) addRollups(ctx context.Context, tx *sql.Tx, delta monitor.RollupDelta) error {
	keys := slices.Collect(maps.Keys(delta))
	var dropped []any
	for start := 0; start < len(keys); start += rowsPerWrite {
		part := keys[start:min(start+rowsPerWrite, len(keys))]
		args := make([]any, 0, 6*len(part))
		for _, k := range part {
			key := []any{string(k.Kind), ms(k.Bucket), string(k.Status), k.URL, k.Bin}
			args = append(append(args, key...), delta[k])
			if delta[k] < 0 {
				dropped = append(dropped, key...)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO rollups (kind, bucket, status, url, bin, n) VALUES `+rows(len(part), 6)+`
ON CONFLICT (kind, bucket, status, url, bin) DO UPDATE SET n = n + excluded.n`, args...)
		if err != nil {
			return fmt.Errorf("add to %d rollups: %w", len(part), err)
		}
	}
	// Only a counter that went down can have reached zero.
	for start := 0; start < len(dropped); start += 5 * rowsPerWrite {
		part := dropped[start:min(start+5*rowsPerWrite, len(dropped))]
		_, err := tx.ExecContext(ctx, `DELETE FROM rollups WHERE n <= 0 AND (kind, bucket, status, url, bin) IN (VALUES `+rows(len(part)/5, 5)+`)`, part...)
		if err != nil {
			return fmt.Errorf("drop empty rollups: %w", err)
		}
	}
	return nil
}

// rows is n parenthesised groups of k placeholders: the VALUES of a
// multi-row statement.
func rows(n, k int) string {
	one := "(" + marks(k) + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", n), ",")
}

// Prune removes up to limit hooks created before the time given, oldest
// first, and takes their share out of the rollups, in one transaction.
func (s *Store) Prune(ctx context.Context, before time.Time, limit int) (int, error) {
	var n int
	err := s.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT doc FROM hooks INDEXED BY hooks_created WHERE created < ? ORDER BY created, id LIMIT ?`, ms(before), limit)
		if err != nil {
			return fmt.Errorf("find hooks created before %s: %w", before.UTC().Format(time.RFC3339), err)
		}
		hooks, err := scanDocs(rows)
		if err != nil || len(hooks) == 0 {
			return err
		}
		delta := monitor.RollupDelta{}
		ids := make([]any, len(hooks))
		for i := range hooks {
			delta.Change(&hooks[i], nil)
			ids[i] = hooks[i].ID
		}
		for start := 0; start < len(ids); start += maxVars {
			part := ids[start:min(start+maxVars, len(ids))]
			if _, err := tx.ExecContext(ctx, "DELETE FROM hooks WHERE id IN ("+marks(len(part))+")", part...); err != nil {
				return fmt.Errorf("remove %d expired hooks: %w", len(part), err)
			}
		}
		n = len(hooks)
		return s.addRollups(ctx, tx, delta)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// marks is n comma-separated placeholders.
func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// scanDocs decodes the hooks of rows whose one column is doc, and closes
// rows.
func scanDocs(rows *sql.Rows) ([]monitor.Hook, error) {
	defer rows.Close()
	var out []monitor.Hook
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("read a hook: %w", err)
		}
		h, err := decode(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read hooks: %w", err)
	}
	return out, nil
}

// MarkRetry marks the hook, within one write: SQLite's one writer makes
// the check and the mark atomic.
func (s *Store) MarkRetry(ctx context.Context, id string, attempt int, at time.Time) (bool, error) {
	marked := false
	err := s.update(ctx, id, func(h *monitor.Hook) bool {
		if !h.CanMarkRetry(at) {
			return false
		}
		t := at.UTC().Truncate(time.Millisecond)
		h.RetryQueued, h.RetryQueuedAt, marked = attempt, &t, true
		return true
	})
	return marked, err
}

// ClearRetry removes the mark of attempt, if it is still there.
func (s *Store) ClearRetry(ctx context.Context, id string, attempt int) error {
	return s.update(ctx, id, func(h *monitor.Hook) bool {
		if h.RetryQueued != attempt {
			return false
		}
		h.RetryQueued, h.RetryQueuedAt = 0, nil
		return true
	})
}

// update changes the hook id with change, which reports whether it changed
// anything, in one write. The change leaves status, created and url alone,
// so the rollups stay as they are.
func (s *Store) update(ctx context.Context, id string, change func(*monitor.Hook) bool) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		stored, err := load(ctx, tx, []string{id})
		if err != nil {
			return err
		}
		h := stored[id]
		if h == nil {
			return fmt.Errorf("hook %q: %w", id, monitor.ErrNotFound)
		}
		if !change(h) {
			return nil
		}
		h.Version++
		return s.upsertHooks(ctx, tx, []*monitor.Hook{h})
	})
}
