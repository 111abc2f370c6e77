package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stream upkeep: without it the jobs stream, the status stream and the
// dead-letter stream would grow for ever. Every engine trims them now and
// then; engines sharing the streams may trim at the same time, which is
// safe because each trim is one script that decides and trims at once.

// trimEvery is how often an engine trims the streams by default. Each
// round is a few cheap commands per stream, and a short period keeps the
// streams short and each trim small.
const trimEvery = time.Second

// trimRounds bounds how many trims of one stream a round makes. An
// approximate trim removes at most 100 stream nodes' worth of entries
// (Redis's default LIMIT), so a long stream is caught up over several
// rounds rather than in one long-running script.
const trimRounds = 10

// upkeep says how the engine trims its streams. New sets what users get;
// tests of the engine may change it before Run.
type upkeep struct {
	every time.Duration // how often the streams are trimmed
	// exact trims to the entry ("=") instead of to whole stream nodes
	// ("~"). Approximate trims are much cheaper for Redis, and keep at
	// most one node more than asked; tests use exact ones to count.
	exact bool
}

// trimTarget is one stream to trim and how.
type trimTarget struct {
	stream string
	// byGroups trims below the oldest entry that any consumer group of
	// the stream has pending or has not read yet; when no group reads the
	// stream, maxLen applies instead. Without byGroups, maxLen always
	// applies.
	byGroups bool
	maxLen   int // the most entries kept when it applies; 0 for no cap
}

// trimTargets are the streams the engine keeps: the jobs stream is never
// capped, only cleared of what every group has acknowledged; the status
// stream likewise, and capped while no group reads it; the dead-letter
// stream is capped.
func (e *Engine) trimTargets() []trimTarget {
	return []trimTarget{
		{stream: e.keys.jobs, byGroups: true},
		{stream: e.keys.status, byGroups: true, maxLen: e.cfg.statusStreamMaxLen()},
		{stream: e.keys.dead, maxLen: e.cfg.deadLetterMaxLen()},
	}
}

// trimLoop trims the streams every e.upkeep.every until ctx is done. A
// failing trim is logged when it starts failing and when it works again,
// not on every round; the read loop reports Redis being away.
func (e *Engine) trimLoop(ctx context.Context) {
	ticker := time.NewTicker(e.upkeep.every)
	defer ticker.Stop()
	targets := e.trimTargets()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		var err error
		for _, t := range targets {
			if err = e.trimRound(ctx, t); err != nil {
				break
			}
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			e.log.Warn("trimming the streams failed; retrying", "error", err)
		case err != nil:
			e.log.Debug("trimming the streams still fails", "error", err)
		case failing:
			failing = false
			e.log.Info("trimming the streams works again")
		}
	}
}

// trimRound trims one stream until nothing more goes or trimRounds trims
// were made, and counts what went.
func (e *Engine) trimRound(ctx context.Context, t trimTarget) error {
	for range trimRounds {
		n, err := trimStream(ctx, e.rdb, t, e.upkeep.exact)
		if err != nil {
			return err
		}
		e.metrics.trimmed(t.stream, n)
		if n == 0 {
			return nil
		}
	}
	return nil
}

// trimStream trims one stream once (see trimScript) and returns how many
// entries it removed.
func trimStream(ctx context.Context, rdb *redis.Client, t trimTarget, exact bool) (int64, error) {
	mode := "~"
	if exact {
		mode = "="
	}
	byGroups := "0"
	if t.byGroups {
		byGroups = "1"
	}
	n, err := trimScript.Run(ctx, rdb, []string{t.stream}, mode, byGroups, t.maxLen).Int64()
	if err != nil {
		return 0, fmt.Errorf("trim stream %q: %w", t.stream, err)
	}
	return n, nil
}

// trimScript trims one stream. With byGroups, it finds for every consumer
// group of the stream the oldest entry the group still needs: the oldest
// it has pending (read, not acknowledged; XPENDING's smallest id), or
// else the first it has not read (the one after its last-delivered-id).
// It then removes what lies below the oldest of those (XTRIM MINID, which
// removes only ids strictly smaller than the bound). A group created at
// "0" and never read from has read nothing, so nothing is removed. With no
// group, or without byGroups, it caps the stream at maxLen (XTRIM MAXLEN;
// maxLen 0: no cap).
//
// Working out the bound and trimming in one script leaves no window in
// which a group could be created, or read, between the two. A bound that
// was right once stays safe anyway: an acknowledged entry never becomes
// pending again, and new entries get larger ids than any bound. Only an
// operator moving a group back (XGROUP SETID) to entries already trimmed
// would find them gone.
//
// XINFO GROUPS, XPENDING's summary form and XTRIM with MINID or MAXLEN,
// "~" or "=", are served by Redis 6.2 and later and by the embedded
// miniredis of the dev stack (which trims exactly either way). A key that
// is missing or not a stream is left alone.
//
// KEYS[1] the stream. ARGV[1] "~" (approximate) or "=" (exact); ARGV[2]
// "1" for byGroups, else "0"; ARGV[3] maxLen.
// Returns the number of entries removed.
var trimScript = redis.NewScript(`
if redis.call('TYPE', KEYS[1])['ok'] ~= 'stream' then
  return 0
end
local mode, byGroups, maxLen = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])

-- Stream ids as pairs of decimal strings without leading zeros, compared
-- by length then text: Lua's numbers cannot hold every 64-bit value.
local function parse(id)
  if type(id) ~= 'string' then return nil end
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if not ms then
    ms, seq = string.match(id, '^(%d+)$'), '0'
  end
  if not ms then return nil end
  ms = string.gsub(ms, '^0+', '')
  seq = string.gsub(seq, '^0+', '')
  if ms == '' then ms = '0' end
  if seq == '' then seq = '0' end
  return {ms, seq}
end
local function numLess(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function less(a, b)
  if a[1] ~= b[1] then return numLess(a[1], b[1]) end
  return numLess(a[2], b[2])
end
local function incr(s)
  local i = #s
  while i > 0 and string.sub(s, i, i) == '9' do i = i - 1 end
  if i == 0 then return '1' .. string.rep('0', #s) end
  return string.sub(s, 1, i - 1) .. string.char(string.byte(s, i) + 1) .. string.rep('0', #s - i)
end
-- The id right after id: the first one a group that has read up to id
-- has not read.
local function after(id)
  if id[2] == '18446744073709551615' then return {incr(id[1]), '0'} end
  return {id[1], incr(id[2])}
end

if byGroups then
  local bound
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    local last = parse(f['last-delivered-id'])
    if not last then
      return redis.error_reply('ERR group ' .. tostring(f['name']) .. ' of ' .. KEYS[1] .. ': unreadable last-delivered-id')
    end
    local need = after(last)
    if tonumber(f['pending']) > 0 then
      local oldest = parse(redis.call('XPENDING', KEYS[1], f['name'])[2])
      if not oldest then
        return redis.error_reply('ERR group ' .. tostring(f['name']) .. ' of ' .. KEYS[1] .. ': unreadable pending summary')
      end
      if less(oldest, need) then need = oldest end
    end
    if not bound or less(need, bound) then bound = need end
  end
  if bound then
    return redis.call('XTRIM', KEYS[1], 'MINID', mode, bound[1] .. '-' .. bound[2])
  end
end
if maxLen > 0 then
  return redis.call('XTRIM', KEYS[1], 'MAXLEN', mode, maxLen)
end
return 0
`)
