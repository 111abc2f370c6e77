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
		// No silent replays: a command whose reply is lost may have run, so
		// the engine decides what to do about a failure itself (read its
		// pending list again, write an outcome whose script is idempotent).
		MaxRetries: -1,
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
		retry:  sendhooks.RetrySet(c.JobStream),
		dead:   sendhooks.DeadLetterStream(c.JobStream),
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

// retryEntry is a job waiting in the retry set for its next attempt. It is
// stored as a sorted-set member scored by the time it is due, encoded as
// "origin|attempt|runStart|deferrals|" then the job document byte for
// byte, so the forward script can split it without a JSON round trip that
// could alter the payload. deferrals is always 0 now (jobs for a busy host
// wait in the engine); the field stays so that members written by earlier
// versions still parse.
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

// recordScript writes the outcomes of a batch of jobs and acknowledges
// their entries, once. Redis does not roll a MULTI/EXEC back when one of
// its commands fails, so a transaction could acknowledge a job whose
// status event was not written. The script first checks the types of the
// keys it writes, so that no write can fail after an acknowledgement (a
// script runs alone and its effects reach the AOF as one block); then for
// each job it acknowledges the entry and writes the outcome only if the
// entry was still pending, so running it again (after a lost reply, or by
// a second engine that claimed the job) changes nothing.
//
// KEYS[1] the jobs stream; KEYS[2] the status stream; KEYS[3] the retry
// set; KEYS[4] the dead-letter stream.
// ARGV[1] the consumer group, then recordFields arguments per outcome:
// the entry id; the status event, or ""; the retry's due time in Unix
// milliseconds, or ""; the retry-set member; "1" to dead-letter the job,
// with the job, its origin, the error, the attempts made and the time it
// failed.
// Returns how many outcomes it wrote (the others were no longer pending),
// or an error naming a key of the wrong type, having written nothing.
var recordScript = redis.NewScript(`
local want = {[2] = 'stream', [3] = 'zset', [4] = 'stream'}
for i, t in pairs(want) do
  local got = redis.call('TYPE', KEYS[i])['ok']
  if got ~= 'none' and got ~= t then
    return redis.error_reply('WRONGTYPE key ' .. KEYS[i] .. ' holds a ' .. got .. ', not a ' .. t)
  end
end
local written = 0
for i = 2, #ARGV, 10 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    if ARGV[i+1] ~= '' then
      redis.call('XADD', KEYS[2], '*', 'data', ARGV[i+1])
    end
    if ARGV[i+2] ~= '' then
      redis.call('ZADD', KEYS[3], ARGV[i+2], ARGV[i+3])
    end
    if ARGV[i+4] == '1' then
      redis.call('XADD', KEYS[4], '*', 'data', ARGV[i+5], 'origin', ARGV[i+6],
        'error', ARGV[i+7], 'attempts', ARGV[i+8], 'failedAt', ARGV[i+9])
    end
    written = written + 1
  end
end
return written
`)

// recordFields is how many script arguments each outcome takes.
const recordFields = 10

// record writes outcomes and acknowledges their entries in one script
// call (see recordScript), so one round trip. Each outcome is written
// whole or its entry stays pending to be claimed again, and calling record
// again for the same outcomes is harmless.
func record(ctx context.Context, rdb *redis.Client, k keys, batch []entryOutcome) error {
	keys := []string{k.jobs, k.status, k.retry, k.dead}
	args := make([]any, 1, 1+recordFields*len(batch))
	args[0] = k.group
	for _, r := range batch {
		args = append(args, recordArgs(r)...)
	}
	// Run loads the script again if Redis lost its script cache (a
	// restart); running it twice is safe.
	if err := recordScript.Run(ctx, rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("record %d outcome(s): %w", len(batch), err)
	}
	return nil
}

// recordArgs are recordScript's arguments for one outcome.
func recordArgs(r entryOutcome) []any {
	t, o := r.task, r.outcome
	args := []any{t.entryID, r.event, "", "", "0", "", "", "", "", ""}
	if o.retry != nil {
		args[2], args[3] = o.due.UnixMilli(), o.retry.member()
	}
	if o.dead {
		args[4], args[5], args[6] = "1", t.raw, t.origin
		args[7], args[8] = o.event.DeliveryError, o.event.NumberOfTries
		args[9] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	return args
}
