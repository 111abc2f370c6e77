package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Jobs waiting with the engine for their host group stay pending in the
// consumer group, on this consumer's pending list. Two things keep that
// safe:
//
//   - Their idle time is reset while they wait (holdLoop), well before the
//     visibility timeout, so that other engines do not claim them while
//     this one is alive. After a crash nothing resets it, and they are
//     claimed once the visibility timeout has passed.
//   - Every reset, and every read back of a parked job, first checks that
//     the entry is still pending with this consumer, in one script with
//     the reset (touchScript). An entry that another engine claimed after
//     all (Redis was away for longer than the visibility timeout) is
//     dropped here instead of being delivered by both.

// touchBatch bounds the ids of one touchScript call.
const touchBatch = 500

// touchScript resets the idle time of entries still pending with a
// consumer and skips the others: those another consumer claimed, or
// acknowledged ones. Checking and resetting in one script means no claim
// can come between them.
//
// KEYS[1] the jobs stream. ARGV[1] the group; ARGV[2] the consumer; ARGV[3]
// "1" to return the entries (to deliver them), "0" for their ids only;
// ARGV[4] and on the entry ids. Returns the entries, or the ids, still
// pending with the consumer. An entry deleted from the stream is
// acknowledged, since nothing is left to deliver.
var touchScript = redis.NewScript(`
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1, ARGV[2])
  if #p == 1 then
    if ARGV[3] == '1' then
      local e = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
      if e[1] then
        out[#out + 1] = e[1]
      else
        redis.call('XACK', KEYS[1], ARGV[1], id)
      end
    else
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
      out[#out + 1] = id
    end
  end
end
return out
`)

// touchAfter is how long after its last reset a waiting job's idle time
// is reset again: half the time within which it may still be started.
func (e *Engine) touchAfter() time.Duration {
	if latest := e.latestStart(); latest > 0 {
		return latest / 2
	}
	return e.cfg.VisibilityTimeout / 2
}

// holdLoop keeps the shares current as remembered demand fades, and
// resets the idle time of the jobs waiting with the engine, until ctx is
// done.
func (e *Engine) holdLoop(ctx context.Context) {
	every := min(max(e.touchAfter()/4, 10*time.Millisecond), e.sched.memory/4)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		e.sched.tick()
		if err := e.touchWaiting(ctx); err != nil && ctx.Err() == nil {
			e.redisDown("reset the idle time of waiting jobs", err)
		}
	}
}

// touchWaiting resets the idle time of every waiting job whose last reset
// is older than touchAfter, in batches.
func (e *Engine) touchWaiting(ctx context.Context) error {
	for ctx.Err() == nil {
		at := time.Now()
		l := e.sched.stale(at.Add(-e.touchAfter()), touchBatch)
		if len(l.ids) == 0 {
			return nil
		}
		ids, err := e.touch(ctx, l.ids, false)
		if err != nil {
			return err
		}
		ours := make(map[string]bool, len(ids))
		for _, v := range ids {
			if id, ok := v.(string); ok {
				ours[id] = true
			}
		}
		if lost := len(l.ids) - len(ours); lost > 0 {
			e.log.Warn("jobs waiting here were no longer pending with this engine; another engine has them",
				"count", lost)
		}
		for _, id := range l.ids {
			if !ours[id] {
				e.held.remove(id)
			}
		}
		for range e.sched.touched(l, ours, at) {
			e.release(1)
		}
	}
	return nil
}

// touch runs touchScript on ids.
func (e *Engine) touch(ctx context.Context, ids []string, entries bool) ([]any, error) {
	args := make([]any, 0, 3+len(ids))
	flag := "0"
	if entries {
		flag = "1"
	}
	args = append(args, e.keys.group, e.cfg.ConsumerName, flag)
	for _, id := range ids {
		args = append(args, id)
	}
	res, err := touchScript.Run(ctx, e.rdb, []string{e.keys.jobs}, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("reset the idle time of %d waiting job(s): %w", len(ids), err)
	}
	return res, nil
}

// fetchParked reads back up to n parked jobs, each holding one of the
// caller's slots, for host groups that have room for them, and returns how
// many it read back (their slots are kept; the rest of n is still the
// caller's). The jobs of every group chosen come back in one touchScript
// call: with many host groups each has room for a job or two at a time,
// and a round trip per group would cost more than the jobs' delivery.
func (e *Engine) fetchParked(ctx context.Context, n int) (int, error) {
	fs := e.sched.toFetch(min(n, touchBatch))
	if len(fs) == 0 {
		return 0, nil
	}
	var ids []string
	groupOf := make(map[string]string)
	for _, f := range fs {
		ids = append(ids, f.ids...)
		for _, id := range f.ids {
			groupOf[id] = f.group
		}
	}
	at := time.Now()
	res, err := e.touch(ctx, ids, true)
	if err != nil {
		// They stay parked only in Redis: claimed again after the
		// visibility timeout, by this engine or another.
		for _, id := range ids {
			e.held.remove(id)
		}
		for _, f := range fs {
			e.sched.fetched(f, nil)
		}
		return 0, err
	}
	got := 0
	back := make(map[string][]*heldJob, len(fs))
	for _, v := range res {
		msg, ok := parseEntry(v)
		if !ok {
			continue
		}
		group, ok := groupOf[msg.ID]
		if !ok {
			continue // not asked for: cannot happen
		}
		delete(groupOf, msg.ID)
		t := newTask(msg)
		if t.bad != nil { // parked unparsed (see hold), and bad in a way its URL did not show
			got++
			e.refuse(t)
			continue
		}
		// Its own group, which quickGroup read for parking and the parse
		// confirms; were they ever to differ, the parse's counts.
		back[group] = append(back[group], &heldJob{task: t, group: hostGroupOf(t.to.hostname), touched: at})
	}
	for id := range groupOf { // did not come back: no longer this engine's
		e.held.remove(id)
	}
	for _, f := range fs {
		e.sched.fetched(f, back[f.group])
		got += len(back[f.group])
	}
	return got, nil
}

// parseEntry reads one stream entry, [id, [field, value, ...]], from a
// script's reply.
func parseEntry(v any) (redis.XMessage, bool) {
	pair, ok := v.([]any)
	if !ok || len(pair) != 2 {
		return redis.XMessage{}, false
	}
	id, ok := pair[0].(string)
	if !ok {
		return redis.XMessage{}, false
	}
	fields, _ := pair[1].([]any)
	values := make(map[string]any, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		if k, ok := fields[i].(string); ok {
			values[k] = fields[i+1]
		}
	}
	return redis.XMessage{ID: id, Values: values}, true
}

// heldSet is the entry ids of the jobs an engine holds, parked ones
// included. A map under a mutex rather than a sync.Map: every job read
// passes through add and every outcome through remove, and a sync.Map
// allocates for each id and keeps a tree of pointers that the garbage
// collector walks at every collection, which with tens of thousands of
// jobs parked behind a slow receiver cost more than the deliveries' own
// garbage (docs/benchmarks.md).
type heldSet struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	peak int // the most ids held since the map was made
}

// dropAfter is the peak above which an emptied map is dropped: a Go map
// keeps the room it grew to, and the collector scans that room.
const dropAfter = 4096

// add records id and reports whether it was new.
func (h *heldSet) add(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.ids[id]; ok {
		return false
	}
	if h.ids == nil {
		h.ids = make(map[string]struct{})
	}
	h.ids[id] = struct{}{}
	h.peak = max(h.peak, len(h.ids))
	return true
}

// remove forgets id.
func (h *heldSet) remove(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.ids, id)
	if len(h.ids) == 0 && h.peak > dropAfter {
		h.ids, h.peak = nil, 0
	}
}
