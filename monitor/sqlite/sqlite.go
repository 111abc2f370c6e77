// Package sqlite is the monitor's embedded store: one SQLite file (pure Go,
// modernc.org/sqlite, no cgo) in WAL mode with one writer, for the dev stack
// and single-box installs. It implements monitor.Store.
//
// A webhook is one row of the hooks table: the columns its queries filter
// and sort on, and the whole monitor.Hook (job included, stored once) as a
// BSON document, the encoding its struct tags already define. Counts and
// statistics read the rollups table, kept in the same transaction as the
// hooks, so the two never disagree. docs/monitor.md lists each query and
// the index that serves it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/sendhooks/sendhooks"
	"github.com/sendhooks/sendhooks/monitor"
)

// schema is the store's tables and indexes; every statement is idempotent.
// Times are Unix milliseconds.
//
//   - hooks_created (created, id, …): the list in its order, keyset
//     cursors, created ranges, retention; with delivered, external_id and
//     url in it, the search window (a substring search, a delivered range)
//     is read from the index alone.
//   - hooks_status (status, created, id, …): the same, filtered by status.
//   - hooks_external (external_id, created), hooks_message (message_id,
//     created): exact-id search and Get by producer id.
//   - rollups' primary key (kind, bucket, ...): statistics and totals read
//     a range of buckets of one kind.
const schema = `
CREATE TABLE IF NOT EXISTS hooks (
	id          TEXT PRIMARY KEY,
	created     INTEGER NOT NULL,
	status      TEXT NOT NULL,
	delivered   INTEGER,
	url         TEXT NOT NULL,
	external_id TEXT NOT NULL,
	message_id  TEXT NOT NULL,
	doc         BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS hooks_created ON hooks (created, id, delivered, external_id, url);
CREATE INDEX IF NOT EXISTS hooks_status ON hooks (status, created, id, delivered, external_id, url);
CREATE INDEX IF NOT EXISTS hooks_external ON hooks (external_id, created);
CREATE INDEX IF NOT EXISTS hooks_message ON hooks (message_id, created);
CREATE TABLE IF NOT EXISTS rollups (
	kind   TEXT NOT NULL,
	bucket INTEGER NOT NULL,
	status TEXT NOT NULL,
	url    TEXT NOT NULL,
	bin    INTEGER NOT NULL,
	n      INTEGER NOT NULL,
	PRIMARY KEY (kind, bucket, status, url, bin)
) WITHOUT ROWID;
`

// Store keeps the monitor's webhooks in one SQLite file.
type Store struct {
	path string
	// w is the one writer: SQLite serialises writes anyway, and one
	// connection makes them queue in Go rather than spin on a busy lock.
	w *sql.DB
	// r serves reads, which WAL lets run beside the writer.
	r *sql.DB
}

var _ monitor.Store = (*Store)(nil)

// Open opens the SQLite file at path, creating it, its folder and its
// tables when missing, so that the store answers at once. Setup, which the
// service runs before it ingests, does the rest.
func Open(path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("SQLite folder %s: %w", dir, err)
		}
	}
	w, err := open(path, 1, writerCache)
	if err != nil {
		return nil, err
	}
	r, err := open(path, max(4, runtime.GOMAXPROCS(0)), readerCache)
	if err != nil {
		w.Close()
		return nil, err
	}
	s := &Store{path: path, w: w, r: r}
	if err := s.createSchema(context.Background()); err != nil {
		s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

// Page cache per connection, in KiB. The writer's holds the pages that
// every batch touches (the upper levels of each index, the newest leaves);
// the readers' hold what a page of the list reads.
const (
	writerCache = 64 << 10
	readerCache = 16 << 10
)

// open opens a pool of conns connections to path.
//
// synchronous(FULL) makes every committed batch durable before its events
// are acknowledged in Redis; WAL keeps that to one fsync per batch.
// cacheKiB is each connection's page cache. wal_autocheckpoint lets the
// log grow to about 40 MB between checkpoints (SQLite's default is 4 MB):
// a checkpoint copies each page once however often the batches since the
// last one wrote it. At a million webhooks the default gave 6,369 events/s
// with the last 100,000 22% slower than the first; this gives 7,278 and 9%.
func open(path string, conns, cacheKiB int) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", fmt.Sprintf("cache_size(-%d)", cacheKiB), "temp_store(MEMORY)", "wal_autocheckpoint(10000)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open SQLite %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// Setup creates the tables and indexes that are missing (Open has done it
// once already) and turns the per-URL counters of earlier versions into
// per-receiver ones (moveEndpointRollups), which takes about 15 s per
// million counters once, after an upgrade. Retention is done by Prune, so
// the retention itself needs nothing here.
func (s *Store) Setup(ctx context.Context, _ time.Duration) error {
	if err := s.createSchema(ctx); err != nil {
		return err
	}
	return s.moveEndpointRollups(ctx)
}

// createSchema creates the tables and indexes that are missing.
func (s *Store) createSchema(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create the SQLite schema in %s: %w", s.path, err)
	}
	return nil
}

// Ping checks that the file can be read.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping SQLite %s: %w", s.path, err)
	}
	return nil
}

// Close closes the file, checkpointing the WAL into it.
func (s *Store) Close(context.Context) error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// ms is t in Unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// hookRow is what a hook's columns hold.
type hookRow struct {
	id, status, url, externalID, messageID string
	created                                int64
	delivered                              sql.NullInt64
	doc                                    []byte
}

func rowOf(h *monitor.Hook) (hookRow, error) {
	doc, err := bson.Marshal(h)
	if err != nil {
		return hookRow{}, fmt.Errorf("encode hook %q: %w", h.ID, err)
	}
	r := hookRow{id: h.ID, status: string(h.Status), url: h.URL, externalID: h.ExternalID, messageID: h.MessageID, doc: doc}
	if h.Created != nil {
		r.created = ms(*h.Created)
	}
	if h.Delivered != nil {
		r.delivered = sql.NullInt64{Int64: ms(*h.Delivered), Valid: true}
	}
	return r, nil
}

// decode reads a hook from its stored document.
func decode(doc []byte) (monitor.Hook, error) {
	var h monitor.Hook
	if err := bson.Unmarshal(doc, &h); err != nil {
		return h, fmt.Errorf("decode stored hook: %w", err)
	}
	return h, nil
}

// statusArgs are the statuses a filter keeps, all of them when it names none.
func statusArgs(f monitor.Filter) []sendhooks.Status {
	if len(f.Statuses) > 0 {
		return f.Statuses
	}
	return []sendhooks.Status{sendhooks.StatusSuccess, sendhooks.StatusFailed, sendhooks.StatusRetrying}
}
