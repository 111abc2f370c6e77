// Package monitor tails the engine's status stream into MongoDB and answers
// questions about the webhooks it stored.
//
// Ingestion reads the stream through a Redis consumer group in batches,
// merges each job's events into one document of the hooks collection and
// acknowledges the events only once that document is written. Merging is
// idempotent and does not depend on the order of the events, so a batch read
// twice (after a crash, or by two monitors sharing the group) leaves the same
// documents behind. Documents are written with optimistic concurrency: a
// version number in the filter, and a fresh merge on conflict.
//
// The package also reads the hooks back for the JSON API (list, one hook,
// statistics) and puts a stored job back on the jobs stream for a retry.
package monitor
