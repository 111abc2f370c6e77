package monitor

import (
	"context"
	"errors"
	"time"
)

// Store is where the monitor keeps webhooks: the port that ingestion, the
// API, the dashboard and retention use. Its adapters live beside this
// package, named by their technology: monitor/sqlite (the embedded store of
// the dev stack and single-box installs) and monitor/mongo (production and
// scale-out). One conformance suite, monitor/storetest, checks that both
// give the same answers.
//
// Every method reads a bounded amount whatever is stored: one page of
// webhooks plus index entries, or a bounded number of rollup rows (Stats
// reads one per receiver host, not per URL, for the failing endpoints: only
// a host per webhook makes them grow with the webhooks).
type Store interface {
	// Setup creates what the store needs (tables, indexes, the TTL of
	// retention) and changes none of it that exists in the right shape.
	// The service calls it until it succeeds, before ingesting.
	Setup(ctx context.Context, retention time.Duration) error
	// Apply merges status events into their webhooks and the rollups the
	// statistics are read from. Applying the same events again, in any
	// order, leaves the same webhooks and rollups. When it returns nil
	// every event is stored; on an error some may be, and applying them
	// all again is safe.
	Apply(ctx context.Context, events []Event) error
	// Get returns the webhook whose id, producer webhookId (the newest
	// such) or messageId (the newest such) is id; ErrNotFound when none is,
	// and for "", which names no webhook (not one without a messageId).
	Get(ctx context.Context, id string) (Hook, error)
	// List returns one page of the webhooks the query selects, newest
	// created first, with their count.
	List(ctx context.Context, q ListQuery) (Page, error)
	// Stats computes statistics of the webhooks created in the query's
	// range from the rollups written at ingest.
	Stats(ctx context.Context, q StatsQuery) (Stats, error)
	// MarkRetry records on the webhook id that attempt is being queued by
	// hand, unless the webhook is retrying, or another mark set less than
	// RetryMarkTTL before at is on it: then it reports false and changes
	// nothing. Check and mark are one atomic step, across monitors. The
	// first event of that attempt (or a later one) clears the mark.
	MarkRetry(ctx context.Context, id string, attempt int, at time.Time) (bool, error)
	// ClearRetry removes the mark of attempt from the webhook id, when
	// queueing that attempt failed.
	ClearRetry(ctx context.Context, id string, attempt int) error
	// Prune removes up to limit webhooks created before the time given,
	// oldest first, with their share of the rollups, and returns how many
	// it removed. A store that expires webhooks by itself (a MongoDB TTL
	// index) may remove none.
	Prune(ctx context.Context, before time.Time, limit int) (int, error)
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections and files.
	Close(ctx context.Context) error
}

// ErrNotFound says that no hook has the id asked for.
var ErrNotFound = errors.New("hook not found")

// RetryMarkTTL is how long a retry mark (Store.MarkRetry) holds without the
// retried attempt reporting back; after it, the webhook may be queued
// again (say, the engine was down and the queued job is still waiting).
const RetryMarkTTL = 15 * time.Minute

// Bounds of what one query reads.
const (
	// MaxLimit is the largest page a list returns.
	MaxLimit = 100
	// MaxSearchLength bounds the search text, in characters.
	MaxSearchLength = 200
	// SearchWindow is how many webhooks, newest first among those the
	// other filters select, one substring search looks through. A search
	// that reaches it says so (Page.Partial) and the next page goes on
	// from where it stopped.
	SearchWindow = 100_000
	// MaxExactMatches bounds how many webhooks an exact-id search lists:
	// a producer may reuse one webhookId for many jobs.
	MaxExactMatches = 1000
	// MaxOffset bounds how deep offset paging (the old API's page) goes.
	MaxOffset = 1_000_000
)
