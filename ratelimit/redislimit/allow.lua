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
--          then per window its limit, its capacity (a bucket's burst, a
--          fixed window's limit) and its interval: microseconds per token
--          of a bucket, or minus the period of a fixed window.
--
-- Reply: little-endian doubles: allowed (1 or 0), now, then per window
-- what is left (remaining), when it is whole again (reset) and, on a
-- refusal, how long until it admits the request (retry, 0 if it would).
--
-- The state is one packed string, not a hash: a GET and a SET of one
-- string cost Redis half the CPU of HMGET and HSET of the same fields.

local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('TIME')
  now = time[1] * 1000000 + time[2]
end

local spec = ARGV[2]
local n = (#spec / 8 - 2) / 3
local cost, slack = struct.unpack('<dd', spec)

local state_format = '<' .. string.rep('d', 1 + 2 * n)
local state = {}
local raw = redis.call('GET', KEYS[1])
if raw and #raw == 8 * (1 + 2 * n) then
  state = {struct.unpack(state_format, raw)}
  state[2 + 2 * n] = nil -- unpack's last value is the position after the data
else
  -- No state, or the state of a policy with another number of windows:
  -- start afresh.
  for i = 1, 1 + 2 * n do state[i] = 0 end
end
local deadline = state[1]

-- Check every window; bring each up to now, which changes nothing a
-- request could observe.
local limit, capacity, interval = {}, {}, {}
local allowed = 1
for i = 1, n do
  limit[i], capacity[i], interval[i] = struct.unpack('<ddd', spec, 17 + 24 * (i - 1))
  local t, v = state[2 * i], state[2 * i + 1]
  if interval[i] < 0 then
    local start = now - now % -interval[i]
    if start > t then t, v = start, 0 end
    if v + cost > capacity[i] then allowed = 0 end
  else
    if now > t then t = now end
    if t + (cost - capacity[i]) * interval[i] > now then allowed = 0 end
  end
  state[2 * i], state[2 * i + 1] = t, v
end

-- Take the cost from every window, or from none; report each window.
local reply = {allowed, now}
local need = 0 -- when every window is back to its initial state
for i = 1, n do
  local t, v = state[2 * i], state[2 * i + 1]
  local remaining, reset, retry
  if interval[i] < 0 then
    if allowed == 1 then v = v + cost end
    remaining, reset = limit[i] - v, t - interval[i]
    retry = 0
    if allowed == 0 and v + cost > capacity[i] then retry = reset - now end
    if v > 0 and reset > need then need = reset end
  else
    if allowed == 1 then t = t + cost * interval[i] end
    remaining = math.min(math.floor((capacity[i] * interval[i] - (t - now)) / interval[i]), limit[i])
    reset = t
    retry = 0
    if allowed == 0 then retry = math.max(t + (cost - capacity[i]) * interval[i] - now, 0) end
    if t > need then need = t end
  end
  state[2 * i], state[2 * i + 1] = t, v
  reply[#reply + 1] = remaining
  reply[#reply + 1] = reset
  reply[#reply + 1] = retry
end

-- Write the state back. Its expiry moves only when the state would
-- outlive the deadline set last, and then a slack further, so that most
-- writes keep their TTL instead of paying for PEXPIRE; an idle key's
-- state expires at most the slack after it is back to its initial state.
if allowed == 1 then
  if need > deadline then
    state[1] = need + slack
    redis.call('SET', KEYS[1], struct.pack(state_format, unpack(state)), 'PX', math.ceil((state[1] - now) / 1000))
  else
    redis.call('SET', KEYS[1], struct.pack(state_format, unpack(state)), 'KEEPTTL')
  end
end

return struct.pack('<' .. string.rep('d', #reply), unpack(reply))
