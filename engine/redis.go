package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sendhooks/sendhooks"
)

// NewRedisClient opens a client for the configured Redis, with TLS (and
// client certificates for mutual TLS) when asked.
func NewRedisClient(cfg Config) (*redis.Client, error) {
	c := cfg.Redis
	opts := &redis.Options{
		Addr:     c.Address,
		Password: c.Password,
		DB:       c.DB,
		// Every worker writes its outcome on its own, and the loops hold a
		// connection each: size the pool so no write waits for a connection.
		PoolSize: cfg.NumWorkers + 4,
	}
	if c.TLS {
		tc, err := tlsConfig(c)
		if err != nil {
			return nil, err
		}
		opts.TLSConfig = tc
	}
	return redis.NewClient(opts), nil
}

func tlsConfig(c RedisConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("redisCaCert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redisCaCert %s: no PEM certificate found", c.CACert)
		}
		tc.RootCAs = pool
	}
	if c.ClientCert != "" || c.ClientKey != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("redisClientCert/redisClientKey: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// keys names everything the engine keeps in Redis. The retry set and the
// dead-letter stream are named after the jobs stream, so engines sharing a
// jobs stream share them too.
type keys struct {
	jobs, status, retry, dead, group string
}

func newKeys(c Config) keys {
	return keys{
		jobs:   c.JobStream,
		status: c.StatusStream,
		retry:  c.JobStream + "-retry",
		dead:   c.JobStream + "-dead",
		group:  c.ConsumerGroup,
	}
}

// ensureGroup creates the consumer group, and the stream with it, reading
// from the very start so that jobs written before the first engine started
// are delivered too.
func ensureGroup(ctx context.Context, rdb *redis.Client, k keys) error {
	err := rdb.XGroupCreateMkStream(ctx, k.jobs, k.group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %q on stream %q: %w", k.group, k.jobs, err)
	}
	return nil
}

func isNoGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOGROUP")
}

// retryEntry is a job waiting in the retry set for its next attempt (or for
// its receiver to have room). It is stored as a sorted-set member scored by
// the time it is due, encoded as "origin|attempt|runStart|deferrals|" then
// the job document byte for byte, so the forward script can split it
// without a JSON round trip that could alter the payload.
type retryEntry struct {
	origin                       string
	attempt, runStart, deferrals int
	raw                          string
}

func (r retryEntry) member() string {
	var b strings.Builder
	b.Grow(len(r.origin) + len(r.raw) + 16)
	b.WriteString(r.origin)
	for _, n := range []int{r.attempt, r.runStart, r.deferrals} {
		b.WriteByte('|')
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteByte('|')
	b.WriteString(r.raw)
	return b.String()
}

// forwardScript moves due jobs from the retry set back into the jobs stream,
// where any engine of the group picks them up like a new job. Doing both
// steps in one script means a crash can neither lose a due job nor move it
// twice.
//
// KEYS[1] the retry set; KEYS[2] the jobs stream.
// ARGV[1] now, in Unix milliseconds; ARGV[2] the most entries to move.
// Returns the number of entries moved.
var forwardScript = redis.NewScript(`
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  local origin, attempt, runStart, deferrals, rest = string.match(m, '^([^|]*)|(%d+)|(%d+)|(%d+)|()')
  if origin then
    redis.call('XADD', KEYS[2], '*',
      'data', string.sub(m, rest),
      'origin', origin, 'attempt', attempt, 'runStart', runStart, 'deferrals', deferrals)
  end
  redis.call('ZREM', KEYS[1], m)
end
return #due
`)

// outcome is what a worker durably records about a task before the task's
// stream entry is acknowledged.
type outcome struct {
	event *sendhooks.StatusEvent // status event to publish, if any
	retry *retryEntry            // scheduled next attempt, if any
	due   time.Time              // when retry is due
	dead  bool                   // keep the job in the dead-letter stream
}

// entryOutcome is an outcome ready to write: the task it ends, and its
// status event already encoded.
type entryOutcome struct {
	task    task
	outcome outcome
	event   []byte // encoded outcome.event; nil when there is none
}

// recordScript writes one job's outcome and then acknowledges its entry,
// once. Redis does not roll a MULTI/EXEC back when one of its commands
// fails, so a transaction could acknowledge a job whose status event was
// not written; a script stops at its first failing command, and the
// acknowledgement comes last. And because it first checks that the entry
// is still pending, running it again (after a lost reply, or by a second
// engine that claimed the job) changes nothing.
//
// KEYS[1] the jobs stream; KEYS[2] the status stream; KEYS[3] the retry
// set; KEYS[4] the dead-letter stream.
// ARGV[1] the consumer group; ARGV[2] the entry id; ARGV[3] the status
// event, or ""; ARGV[4] the retry's due time in Unix milliseconds, or "";
// ARGV[5] the retry-set member; ARGV[6] "1" to dead-letter the job, with
// ARGV[7] the job, ARGV[8] its origin, ARGV[9] the error, ARGV[10] the
// attempts made and ARGV[11] the time it failed.
// Returns 1 when it wrote the outcome, 0 when the entry was no longer
// pending.
var recordScript = redis.NewScript(`
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) == 0 then
  return 0
end
if ARGV[3] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'data', ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
end
if ARGV[6] == '1' then
  redis.call('XADD', KEYS[4], '*', 'data', ARGV[7], 'origin', ARGV[8],
    'error', ARGV[9], 'attempts', ARGV[10], 'failedAt', ARGV[11])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// record writes outcomes and acknowledges their entries: one script call
// per outcome (see recordScript), all in one pipeline, so one round trip.
// Each outcome is written whole or its entry stays pending to be claimed
// again, and calling record again for the same outcomes is harmless.
func record(ctx context.Context, rdb *redis.Client, k keys, batch []entryOutcome) error {
	err := runRecord(ctx, rdb, k, batch)
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		// Redis lost its script cache (a restart): load the script and
		// run the batch again, which the script makes safe.
		if err = recordScript.Load(ctx, rdb).Err(); err == nil {
			err = runRecord(ctx, rdb, k, batch)
		}
	}
	if err != nil {
		return fmt.Errorf("record %d outcome(s): %w", len(batch), err)
	}
	return nil
}

func runRecord(ctx context.Context, rdb *redis.Client, k keys, batch []entryOutcome) error {
	keys := []string{k.jobs, k.status, k.retry, k.dead}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range batch {
			recordScript.EvalSha(ctx, p, keys, recordArgs(k, r)...)
		}
		return nil
	})
	return err
}

// recordArgs are recordScript's arguments for one outcome.
func recordArgs(k keys, r entryOutcome) []any {
	t, o := r.task, r.outcome
	args := []any{k.group, t.entryID, r.event, "", "", "0", "", "", "", "", ""}
	if o.retry != nil {
		args[3], args[4] = o.due.UnixMilli(), o.retry.member()
	}
	if o.dead {
		args[5], args[6], args[7] = "1", t.raw, t.origin
		args[8], args[9] = o.event.DeliveryError, o.event.NumberOfTries
		args[10] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	return args
}
