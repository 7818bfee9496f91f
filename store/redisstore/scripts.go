package redisstore

import "github.com/redis/go-redis/v9"

// The scripts only move JSON written by Go: they never re-encode it (the
// account script decodes one to read its version), so the encoding stays Go's (Lua's cjson would, for one, turn [] into {}). Each
// touches the keys of one hash tag only, so it runs in one Cluster slot:
// the account scripts in the account's, the copy scripts in the key
// hash's, the usage script in the key ID's.

// addEvent is a function of the scripts that record events. It appends
// the event of key id to the account's stream under an ID of the event's
// own time (at, ms; after the stream's last ID when that is later), drops
// the stream's events older than the retention before it, and keeps the
// key's event IDs in a list of its own, dropping the key's oldest event
// past perKey. The list expires a retention after the key's last event.
// With the outbox on (outbox "1"), the account is pending in its slot's
// outbox set (obset), due at the event's time unless it was pending
// already, and its delivery state (od) starts its cursor just before
// this event the first time.
const addEvent = `
local function addEvent(stream, list, id, event, at, retention, perKey, obset, od, outbox, owner)
  local ms, cutoff = tonumber(at), math.max(tonumber(at) - tonumber(retention), 0)
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  if last then ms = math.max(ms, tonumber(string.match(last[1], '^%d+'))) end
  local eid = redis.call('XADD', stream, 'MINID', string.format('%d', cutoff),
    string.format('%d', ms) .. '-*', 'k', id, 'e', event)
  if outbox == '1' then
    if redis.call('HEXISTS', od, 'cursor') == 0 then
      redis.call('HSET', od, 'cursor', last and last[1] or '0-0')
    end
    redis.call('ZADD', obset, 'NX', ms, owner)
  end
  redis.call('RPUSH', list, eid)
  while true do
    local head = redis.call('LINDEX', list, 0)
    if not head or tonumber(string.match(head, '^%d+')) >= cutoff then break end
    redis.call('LPOP', list)
  end
  if redis.call('LLEN', list) > tonumber(perKey) then
    redis.call('XDEL', stream, redis.call('LPOP', list))
  end
  redis.call('PEXPIRE', list, retention)
end
`

// createScript inserts an account's record unless its ID exists or the
// owner is at the limit, and records the event.
//
// KEYS: record, owner set, event stream, the key's event list, the
// slot's outbox set, the account's delivery state.
// ARGV: record JSON, ID, max active (0 = none), now (µs), owner score,
// event JSON ("" = none), the event's time (ms), the retention (ms), the
// most events a key keeps, "1" with the outbox on, the owner.
var createScript = redis.NewScript(addEvent + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'dup' end
local max = tonumber(ARGV[3])
if max > 0 and redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[4], '+inf') >= max then
  return 'limit'
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
if ARGV[6] ~= '' then
  addEvent(KEYS[3], KEYS[4], ARGV[2], ARGV[6], ARGV[7], ARGV[8], ARGV[9], KEYS[5], KEYS[6], ARGV[10], ARGV[11])
end
return 'ok'
`)

// changeScript replaces (or deletes) an account's record if it still
// holds the JSON the caller read, optionally inserts a replacement
// (rotation) after counting the owner's active keys, and records the
// event.
//
// KEYS: record, owner set, event stream, the key's event list, the
// slot's outbox set, the account's delivery state, and when rotating the
// replacement's record.
// ARGV: old JSON, new JSON ("" = delete), ID, owner score, event JSON
// ("" = none), replacement JSON ("" = none), replacement ID, replacement
// owner score, the owner's limit (0 = none) and now (µs), against which
// the replacement is counted, the event's time (ms), the retention (ms),
// the most events a key keeps, "1" with the outbox on, the owner.
var changeScript = redis.NewScript(addEvent + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'conflict' end
if ARGV[6] ~= '' then
  if redis.call('EXISTS', KEYS[7]) == 1 then return 'dup' end
  local max = tonumber(ARGV[9])
  if max > 0 and redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[10], '+inf') >= max then
    return 'limit'
  end
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
end
if ARGV[6] ~= '' then
  redis.call('SET', KEYS[7], ARGV[6])
  redis.call('ZADD', KEYS[2], ARGV[8], ARGV[7])
end
if ARGV[5] ~= '' then
  addEvent(KEYS[3], KEYS[4], ARGV[3], ARGV[5], ARGV[11], ARGV[12], ARGV[13], KEYS[5], KEYS[6], ARGV[14], ARGV[15])
end
return 'ok'
`)

// The lookup copy of a record is a hash: r (the record JSON, absent
// while the record is being created), v (the record version r holds), o
// and i (owner and ID, to find the record), and while a change is in
// flight wt and wd (the version it will write and the instant, µs, after
// which a Lookup stops waiting for it and repairs the copy from the
// record).

// claimScript creates the copy of a new record, held and without JSON,
// unless the hash is taken.
//
// KEYS: copy. ARGV: owner, ID, hold deadline (µs).
var claimScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'i', ARGV[2], 'v', '0', 'wt', '1', 'wd', ARGV[3])
return 1
`)

// holdScript marks a change to version ARGV[1] in flight: 'stale' when
// the copy already holds that version or a later one (the caller read an
// old record), 'gone' when there is no copy.
//
// KEYS: copy. ARGV: target version, hold deadline (µs).
var holdScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
local target = tonumber(ARGV[1])
if target <= tonumber(redis.call('HGET', KEYS[1], 'v') or '0') then return 'stale' end
if target >= tonumber(redis.call('HGET', KEYS[1], 'wt') or '0') then
  redis.call('HSET', KEYS[1], 'wt', ARGV[1], 'wd', ARGV[2])
end
return 'ok'
`)

// releaseScript ends a hold whose change did not happen.
//
// KEYS: copy. ARGV: target version.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'wt') == ARGV[1] then redis.call('HDEL', KEYS[1], 'wt', 'wd') end
return 1
`)

// syncScript writes a record's version into its copy unless the copy
// holds a later one, ends the holds it satisfies (and expired ones), or
// deletes the copy when the record is gone; then announces the change.
// It never creates a copy: a late write after a delete finds none.
// Returns 0 when there was no copy.
//
// KEYS: copy. ARGV: version, record JSON ("" = deleted), now (µs),
// channel, hash hex.
var syncScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  local v = tonumber(ARGV[1])
  if v > tonumber(redis.call('HGET', KEYS[1], 'v') or '0') then
    redis.call('HSET', KEYS[1], 'r', ARGV[2], 'v', ARGV[1])
  end
  if v >= tonumber(redis.call('HGET', KEYS[1], 'wt') or '0')
    or tonumber(redis.call('HGET', KEYS[1], 'wd') or '0') < tonumber(ARGV[3]) then
    redis.call('HDEL', KEYS[1], 'wt', 'wd')
  end
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`)

// addUsageScript adds one key's usage delta unless the key no longer
// exists, keeps the latest last-used time, and counts endpoints past the
// most a key may keep as "other".
//
// KEYS: ID index, usage hash.
// ARGV: the most endpoints a key keeps, requests, errors, last used
// (µs), then pairs of endpoint and count.
var addUsageScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local k, maxEndpoints = KEYS[2], tonumber(ARGV[1])
redis.call('HINCRBY', k, 'total', ARGV[2])
redis.call('HINCRBY', k, 'errors', ARGV[3])
if tonumber(ARGV[4]) > tonumber(redis.call('HGET', k, 'last') or '0') then
  redis.call('HSET', k, 'last', ARGV[4])
end
for j = 5, #ARGV, 2 do
  local field = 'ep:' .. ARGV[j]
  if field ~= 'ep:other' and redis.call('HEXISTS', k, field) == 0 then
    -- Besides its endpoints the hash holds total, errors, last and
    -- perhaps ep:other.
    local endpoints = redis.call('HLEN', k) - 3 - redis.call('HEXISTS', k, 'ep:other')
    if endpoints >= maxEndpoints then field = 'ep:other' end
  end
  redis.call('HINCRBY', k, field, ARGV[j + 1])
end
return 1
`)

// factScript records a fact once: it claims the fact, for the
// retention, and records its event, unless the fact was claimed before.
// Returns 1 when it recorded.
//
// KEYS: the fact's claim, event stream, the key's event list, the slot's
// outbox set, the account's delivery state.
// ARGV: event JSON, the event's time (ms), the retention (ms), the most
// events a key keeps, "1" with the outbox on, the owner, the key's ID.
var factScript = redis.NewScript(addEvent + `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then return 0 end
addEvent(KEYS[2], KEYS[3], ARGV[7], ARGV[1], ARGV[2], ARGV[3], ARGV[4], KEYS[4], KEYS[5], ARGV[5], ARGV[6])
return 1
`)

// leaseScript leases the account's next undelivered event, if its
// outbox entry is due: the account stays in the outbox set, due when
// the lease ends. Returns nil, or the event's stream ID, key ID, JSON
// and the attempts settled.
//
// KEYS: the slot's outbox set, the account's delivery state, its event
// stream. ARGV: owner, now (ms), lease (ms), lease token.
var leaseScript = redis.NewScript(`
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return false end
local cursor = redis.call('HGET', KEYS[2], 'cursor') or '0-0'
local nxt = redis.call('XRANGE', KEYS[3], '(' .. cursor, '+', 'COUNT', 1)[1]
if not nxt then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
redis.call('HSET', KEYS[2], 'lease', ARGV[4])
redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
local k, e = '', ''
for i = 1, #nxt[2], 2 do
  if nxt[2][i] == 'k' then k = nxt[2][i + 1] elseif nxt[2][i] == 'e' then e = nxt[2][i + 1] end
end
return {nxt[1], k, e, redis.call('HGET', KEYS[2], 'attempts') or '0'}
`)

// settleScript ends a lease, unless another has replaced it: done moves
// the cursor past the event, and the account stays pending, due at once,
// while events follow it; otherwise the event is due again at retry.
// Returns 0 for a lease that is not the current one.
//
// KEYS: the slot's outbox set, the account's delivery state, its event
// stream. ARGV: owner, lease token, event's stream ID, "1" for done,
// retry (ms).
var settleScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then return 0 end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], 'cursor', ARGV[3], 'attempts', 0, 'lease', '')
  if redis.call('XRANGE', KEYS[3], '(' .. ARGV[3], '+', 'COUNT', 1)[1] then
    redis.call('ZADD', KEYS[1], 0, ARGV[1])
  else
    redis.call('ZREM', KEYS[1], ARGV[1])
  end
else
  redis.call('HINCRBY', KEYS[2], 'attempts', 1)
  redis.call('HSET', KEYS[2], 'lease', '')
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
end
return 1
`)
