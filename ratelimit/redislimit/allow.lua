-- allow.lua decides one request against every window of a policy, in one
-- atomic step on Redis server time, with the semantics of
-- ratelimit.Memory: a request passes only if every window has room, and
-- then takes from every window; a refused request takes from none.
--
-- A token bucket is kept as GCRA keeps it: t, the instant at which the
-- bucket is full again (its theoretical arrival time). A fixed window is
-- a count v since its start t, a multiple of its period since the epoch.
-- Times are microseconds since the epoch; every number is a double, exact
-- below 2^53 (the Go side refuses windows that could pass that).
--
-- KEYS[1]  the state: little-endian doubles, the expiry deadline set last,
--          then t and v of each window.
-- ARGV[1]  now, or "" to read Redis TIME (tests pass a clock).
-- ARGV[2]  the request, little-endian doubles: the cost, the expiry slack,
--          then per window its capacity (a bucket's burst, a fixed
--          window's limit) and its interval: microseconds per token of a
--          bucket, or minus the period of a fixed window.
--
-- Reply: little-endian doubles: allowed (1 or 0), now, then the state as
-- it is after the decision. The Go side turns each window's t and v into
-- what it reports (remaining, reset, retry after), with the code the
-- memory limiter uses.
--
-- The state is one packed string, not a hash: a GET and a SET of one
-- string cost Redis half the CPU of HMGET and HSET of the same fields.

local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('TIME')
  now = time[1] * 1000000 + time[2]
end

local n = (#ARGV[2] / 8 - 2) / 2
-- spec[2i+1] and spec[2i+2] are window i's capacity and interval.
local spec = {struct.unpack('<' .. string.rep('d', 2 + 2 * n), ARGV[2])}
local cost, slack = spec[1], spec[2]

-- state[1] is the expiry deadline; state[2i] and state[2i+1] are window
-- i's t and v.
local format = '<' .. string.rep('d', 1 + 2 * n)
local state
local raw = redis.call('GET', KEYS[1])
if raw and #raw == 8 * (1 + 2 * n) then
  state = {struct.unpack(format, raw)}
  state[2 + 2 * n] = nil -- unpack's last value is the position after the data
else
  -- No state, or the state of a policy with another number of windows:
  -- start afresh.
  state = {0}
  for i = 2, 1 + 2 * n do state[i] = 0 end
end

-- Check every window, bringing each up to now, which changes nothing a
-- request could observe: a fixed window past its end starts anew, a
-- bucket's t is never in the past.
local allowed = 1
for i = 1, n do
  local capacity, interval = spec[2 * i + 1], spec[2 * i + 2]
  local t, v = state[2 * i], state[2 * i + 1]
  if interval < 0 then
    local start = now - now % -interval
    if start > t then t, v = start, 0 end
    if v + cost > capacity then allowed = 0 end
  else
    if now > t then t = now end
    if t + (cost - capacity) * interval > now then allowed = 0 end
  end
  state[2 * i], state[2 * i + 1] = t, v
end

-- Take the cost from every window, or from none, and write the state
-- back. Its expiry moves only when the state would outlive the deadline
-- set last, and then a slack further, so that most writes keep their TTL
-- instead of paying for PEXPIRE; an idle key's state expires at most the
-- slack after every window is back to its initial state.
local packed
if allowed == 1 then
  local need = 0 -- when every window is back to its initial state
  for i = 1, n do
    local interval = spec[2 * i + 2]
    if interval < 0 then
      state[2 * i + 1] = state[2 * i + 1] + cost
      need = math.max(need, state[2 * i] - interval)
    else
      state[2 * i] = state[2 * i] + cost * interval
      need = math.max(need, state[2 * i])
    end
  end
  if need > state[1] then
    state[1] = need + slack
    packed = struct.pack(format, unpack(state))
    redis.call('SET', KEYS[1], packed, 'PX', math.ceil((state[1] - now) / 1000))
  else
    packed = struct.pack(format, unpack(state))
    redis.call('SET', KEYS[1], packed, 'KEEPTTL')
  end
else
  packed = struct.pack(format, unpack(state))
end

return struct.pack('<dd', allowed, now) .. packed
