-- allow.lua decides one request against every window of an account's
-- policy and of a key's, in one atomic step on Redis server time, with the
-- semantics of ratelimit.Memory: a request passes only if every window
-- has room, and then takes from every window; a refused request takes
-- from none.
--
-- A token bucket is kept as GCRA keeps it: t, the instant at which the
-- bucket is full again (its theoretical arrival time). A fixed window is
-- a count v since its start t, a multiple of its period since the epoch.
-- Times are microseconds since the epoch; every number is a double, exact
-- below 2^53 (the Go side refuses windows that could pass that).
--
-- KEYS[1]  the account's state, KEYS[2] the key's: little-endian doubles,
--          the expiry deadline set last, then per window its period,
--          interval, t and v. Both carry the account's hash tag, so that
--          Cluster keeps them in one slot.
-- ARGV[1]  now, or "" to read Redis TIME (tests pass a clock).
-- ARGV[2]  the cost.
-- ARGV[3]  the account's policy, ARGV[4] the key's, "" for none: little-
--          endian doubles, the expiry slack, then per window its capacity
--          (a bucket's burst, a fixed window's limit), its interval
--          (microseconds per token of a bucket, or minus the period of a
--          fixed window) and its period.
--
-- Reply: little-endian doubles: allowed (1 or 0), now, then t and v of
-- each window of the account's policy and then of the key's, as they are
-- after the decision. The Go side turns them into what each window
-- reports (remaining, reset, retry after), with the memory limiter's
-- code.
--
-- A state is one packed string, not a hash: a GET and a SET of one string
-- cost Redis half the CPU of HMGET and HSET of the same fields.

local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('TIME')
  now = time[1] * 1000000 + time[2]
end
local cost = tonumber(ARGV[2])

-- load returns the policy in spec and the state stored at key under it:
-- {slack, windows = {{capacity, interval, period, t, v}, ...}}. A state
-- kept under another policy carries over: each window starts from the
-- old window of the same kind and period, a bucket's spent tokens
-- rescaled to its new rate (rounded up, so that a change never mints a
-- token); a window with no counterpart starts afresh.
local function load(key, spec)
  if spec == '' then return nil end
  local n = (#spec / 8 - 1) / 3
  local s = {struct.unpack('<' .. string.rep('d', 1 + 3 * n), spec)}
  local p = {slack = s[1], windows = {}}
  local old = {}
  local raw = redis.call('GET', key)
  if raw and #raw % 32 == 8 then
    local m = (#raw - 8) / 32
    local o = {struct.unpack('<' .. string.rep('d', 1 + 4 * m), raw)}
    p.deadline = o[1]
    for j = 1, m do
      old[j] = {period = o[4 * j - 2], interval = o[4 * j - 1], t = o[4 * j], v = o[4 * j + 1]}
    end
  end
  for i = 1, n do
    local w = {capacity = s[3 * i - 1], interval = s[3 * i], period = s[3 * i + 1], t = 0, v = 0}
    for _, o in ipairs(old) do
      if o.period == w.period and (o.interval < 0) == (w.interval < 0) then
        w.t, w.v = o.t, o.v
        if w.interval > 0 and o.interval ~= w.interval and o.t > now then
          w.t = now + math.ceil((o.t - now) / o.interval) * w.interval
        end
        break
      end
    end
    p.windows[i] = w
  end
  return p
end

-- admits brings every window of p up to now, which changes nothing a
-- request could observe (a fixed window past its end starts anew, a
-- bucket's t is never in the past), and reports whether all admit cost.
local function admits(p)
  if not p then return true end
  local ok = true
  for _, w in ipairs(p.windows) do
    if w.interval < 0 then
      local start = now - now % w.period
      if start > w.t then w.t, w.v = start, 0 end
      if w.v + cost > w.capacity then ok = false end
    else
      if now > w.t then w.t = now end
      if w.t + (cost - w.capacity) * w.interval > now then ok = false end
    end
  end
  return ok
end

-- take takes cost from every window of p and writes its state back. The
-- expiry moves only when the state would outlive the deadline set last,
-- and then a slack further, so that most writes keep their TTL instead of
-- paying for PEXPIRE; an idle state expires at most the slack after every
-- window is back to its initial state.
local function take(key, p)
  if not p then return end
  local need = 0 -- when every window is back to its initial state
  local fields = {0}
  for _, w in ipairs(p.windows) do
    if w.interval < 0 then
      w.v = w.v + cost
      need = math.max(need, w.t + w.period)
    else
      w.t = w.t + cost * w.interval
      need = math.max(need, w.t)
    end
    fields[#fields + 1] = w.period
    fields[#fields + 1] = w.interval
    fields[#fields + 1] = w.t
    fields[#fields + 1] = w.v
  end
  local packed
  if p.deadline and need <= p.deadline then
    fields[1] = p.deadline
    packed = struct.pack('<' .. string.rep('d', #fields), unpack(fields))
    redis.call('SET', key, packed, 'KEEPTTL')
  else
    fields[1] = need + p.slack
    packed = struct.pack('<' .. string.rep('d', #fields), unpack(fields))
    redis.call('SET', key, packed, 'PX', math.max(1, math.ceil((fields[1] - now) / 1000)))
  end
end

local account, key = load(KEYS[1], ARGV[3]), load(KEYS[2], ARGV[4])
local allowed = admits(account)
allowed = admits(key) and allowed
if allowed and cost > 0 then
  take(KEYS[1], account)
  take(KEYS[2], key)
end

local reply = {allowed and 1 or 0, now}
for _, p in ipairs({account or {windows = {}}, key or {windows = {}}}) do
  for _, w in ipairs(p.windows) do
    reply[#reply + 1] = w.t
    reply[#reply + 1] = w.v
  end
end
return struct.pack('<' .. string.rep('d', #reply), unpack(reply))
