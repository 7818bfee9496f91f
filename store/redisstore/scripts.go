package redisstore

import "github.com/redis/go-redis/v9"

// The scripts only move JSON written by Go: they never decode it, so the
// encoding stays Go's (Lua's cjson would, for one, turn [] into {}). Every
// key they touch carries the namespace's hash tag, so each script runs in
// one Cluster slot. Keys other than KEYS[...] are derived from the
// namespace prefix passed in ARGV, in the same slot.

// createScript inserts a record unless its ID or hash exists or the owner
// is at the limit.
//
// KEYS: id key, record key, owner set, expiry set, event stream.
// ARGV: record JSON, the id key's value (hash hex and owner), ID, max
// active (0 = none), now (µs), owner score, expiry score ("" = none),
// event JSON ("" = none).
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 'dup'
end
local max = tonumber(ARGV[4])
if max > 0 and redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[5], '+inf') >= max then
  return 'limit'
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[3])
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[3])
end
if ARGV[8] ~= '' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[9], '*', 'k', ARGV[3], 'e', ARGV[8])
end
return 'ok'
`)

// getScript returns {hash hex, record JSON} for an ID, or nil; with an
// owner, nil also for another owner's ID, after the same work as for an
// unknown one. The id key holds the hash hex followed by the owner (only
// the hex for records written before the owner was kept there: those are
// returned, and the caller compares).
//
// KEYS: id key. ARGV: record key prefix, owner ("" = any).
var getScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local hex, owner = string.sub(v, 1, 64), string.sub(v, 65)
if ARGV[2] ~= '' and owner ~= '' and owner ~= ARGV[2] then return false end
local rec = redis.call('GET', ARGV[1] .. hex)
if not rec then return false end
return {hex, rec}
`)

// getManyScript returns the record JSON of each ID in ARGV[2..], skipping
// IDs that no longer exist.
//
// ARGV: key prefix, IDs...
var getManyScript = redis.NewScript(`
local out = {}
for i = 2, #ARGV do
  local v = redis.call('GET', ARGV[1] .. 'id:' .. ARGV[i])
  if v then
    local rec = redis.call('GET', ARGV[1] .. 'h:' .. string.sub(v, 1, 64))
    if rec then out[#out + 1] = rec end
  end
end
return out
`)

// updateScript replaces a record if it still holds the JSON the caller
// read, updates its owner and expiry scores, optionally inserts a
// replacement (rotation), and announces the change.
//
// KEYS: record key, owner set, expiry set, and when rotating the
// replacement's id key and record key.
// ARGV: old JSON, new JSON, ID, owner score, expiry score ("" = remove),
// channel, hash hex, replacement JSON, replacement id key value (hash hex
// and owner), replacement ID,
// replacement owner score, replacement expiry score ("" = none), the
// owner's limit (0 = none) and now (µs), against which a replacement is
// counted before it is inserted, the revoked set's key and the record's
// score there ("" = not revoked), the event stream's key and the event
// JSON ("" = none), and the most events a stream keeps.
var updateScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'conflict' end
if ARGV[8] ~= '' and (redis.call('EXISTS', KEYS[4]) == 1 or redis.call('EXISTS', KEYS[5]) == 1) then
  return 'dup'
end
local max = tonumber(ARGV[13])
if ARGV[8] ~= '' and max > 0 and redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[14], '+inf') >= max then
  return 'limit'
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[3], ARGV[3])
else
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
end
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[5], ARGV[8])
  redis.call('SET', KEYS[4], ARGV[9])
  redis.call('ZADD', KEYS[2], ARGV[11], ARGV[10])
  if ARGV[12] ~= '' then redis.call('ZADD', KEYS[3], ARGV[12], ARGV[10]) end
end
if ARGV[16] ~= '' then redis.call('ZADD', ARGV[15], ARGV[16], ARGV[3]) end
if ARGV[18] ~= '' then
  redis.call('XADD', ARGV[17], 'MAXLEN', '~', ARGV[19], '*', 'k', ARGV[3], 'e', ARGV[18])
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 'ok'
`)

// deleteScript removes a record and its indexes if it still holds the JSON
// the caller read, and announces the change.
//
// KEYS: record key, id key, owner set, expiry set, usage key, revoked
// set, event stream.
// ARGV: old JSON, ID, channel, hash hex, event JSON ("" = none), the
// most events a stream keeps.
var deleteScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'conflict' end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[5])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[2])
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[6], '*', 'k', ARGV[2], 'e', ARGV[5])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 'ok'
`)

// purgeScript deletes up to a number of records that expired (the
// expiry set) or were revoked (the revoked set) before a cutoff, as
// deleteScript does, each with its event, and returns how many.
//
// KEYS: expiry set, revoked set.
// ARGV: key prefix, cutoff (µs), most records, channel, event JSON
// (without key or account), the most events a stream keeps.
var purgeScript = redis.NewScript(`
local p, limit = ARGV[1], tonumber(ARGV[3])
local ids = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[2], 'BYSCORE', 'LIMIT', 0, limit)
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], '-inf', '(' .. ARGV[2], 'BYSCORE', 'LIMIT', 0, limit - #ids)) do
  ids[#ids + 1] = id
end
local n = 0
for _, id in ipairs(ids) do
  local v = redis.call('GET', p .. 'id:' .. id)
  if v then
    local hex, owner = string.sub(v, 1, 64), string.sub(v, 65)
    if owner == '' then
      -- Written before the id key held the owner: read it once from the
      -- record (no JSON is written back).
      owner = cjson.decode(redis.call('GET', p .. 'h:' .. hex) or '{}').owner or ''
    end
    redis.call('DEL', p .. 'h:' .. hex)
    redis.call('DEL', p .. 'id:' .. id, p .. 'u:' .. id)
    redis.call('ZREM', p .. 'o:' .. owner, id)
    redis.call('XADD', p .. 'ev:' .. owner, 'MAXLEN', '~', ARGV[6], '*', 'k', id, 'e', ARGV[5])
    redis.call('PUBLISH', ARGV[4], hex)
    n = n + 1
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return n
`)

// addUsageScript adds a batch of usage deltas, skipping keys that no longer
// exist, keeps the latest last-used time, and counts endpoints past the
// most a key may keep as "other".
//
// KEYS: expiry set (routes the script to the namespace's slot).
// ARGV: key prefix, the most endpoints a key keeps, then per delta: ID,
// requests, errors, last used (µs), number of endpoints n, and n pairs of
// endpoint and count.
var addUsageScript = redis.NewScript(`
local p, maxEndpoints = ARGV[1], tonumber(ARGV[2])
local i = 3
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 4])
  if redis.call('EXISTS', p .. 'id:' .. id) == 1 then
    local k = p .. 'u:' .. id
    redis.call('HINCRBY', k, 'total', ARGV[i + 1])
    redis.call('HINCRBY', k, 'errors', ARGV[i + 2])
    if tonumber(ARGV[i + 3]) > tonumber(redis.call('HGET', k, 'last') or '0') then
      redis.call('HSET', k, 'last', ARGV[i + 3])
    end
    for j = 0, n - 1 do
      local field = 'ep:' .. ARGV[i + 5 + 2 * j]
      if field ~= 'ep:other' and redis.call('HEXISTS', k, field) == 0 then
        -- Besides its endpoints the hash holds total, errors, last and
        -- perhaps ep:other.
        local endpoints = redis.call('HLEN', k) - 3 - redis.call('HEXISTS', k, 'ep:other')
        if endpoints >= maxEndpoints then field = 'ep:other' end
      end
      redis.call('HINCRBY', k, field, ARGV[i + 6 + 2 * j])
    end
  end
  i = i + 5 + 2 * n
end
return 1
`)
