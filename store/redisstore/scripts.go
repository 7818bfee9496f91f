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
// KEYS: id key, record key, owner set, expiry set.
// ARGV: record JSON, the id key's value (hash hex and owner), ID, max
// active (0 = none), now (µs), owner score, expiry score ("" = none).
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
// counted before it is inserted.
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
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 'ok'
`)

// deleteScript removes a record and its indexes if it still holds the JSON
// the caller read, and announces the change.
//
// KEYS: record key, id key, owner set, expiry set, usage key.
// ARGV: old JSON, ID, channel, hash hex.
var deleteScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'conflict' end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[5])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 'ok'
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
