-- allow.lua decides one request against every window of an account's
-- policy and of a key's, in one atomic step on Redis server time, with the
-- semantics of ratelimit.Memory: a request passes only if every window
-- has room, and then takes from every window; a refused request takes
-- from none.
--
-- A token bucket is kept as GCRA keeps it: t, the instant at which the
-- bucket is full again (its theoretical arrival time). A fixed window is
-- a count v since its start t, a multiple of its period since the epoch,
-- or for a calendar month (period 0) the month's first instant, UTC.
-- Times are microseconds since the epoch; every number is a double, exact
-- below 2^53 (the Go side refuses windows that could pass that).
--
-- KEYS[1]  the account's state, KEYS[2] the key's: little-endian doubles,
--          the policy it was kept under (ARGV[3] or ARGV[4] verbatim),
--          then t and v per window, then the expiry deadline set last.
--          KEYS[3] the account's credit balance: its grant, the refills
--          applied and the balance. All carry the account's hash tag, so
--          that Cluster keeps them in one slot. Each is read with GET, not
--          together with MGET, which would read a value of another type as
--          missing and overwrite it: GET fails on it instead.
-- ARGV[1]  now, or "" to read Redis TIME (tests pass a clock).
-- ARGV[2]  the cost.
-- ARGV[3]  the account's policy, ARGV[4] the key's, "" for none: little-
--          endian doubles, the expiry slack, then per window its capacity
--          (a bucket's burst, a fixed window's limit), its interval
--          (microseconds per token of a bucket, or -1 for a fixed
--          window) and its period (0 for a calendar month).
-- ARGV[5]  the credits, "" for none: little-endian doubles, the grant
--          (its instant), the balance granted, the refill amount, 1 to
--          add it (0 to replace), 1 for monthly refills (0 daily), the
--          first refill, and its year, month, day and time of day.
--
-- Reply: integers (every number here is a whole one): allowed (1 or 0)
-- and now, then t and v of each window of the account's policy and of the
-- key's as they are after the decision, then with credits the balance and
-- the number of refills applied. The Go side turns them into what each
-- window reports (remaining, reset, retry after), with the memory
-- limiter's code.

-- A state is one packed string, not a hash: a GET and a SET of one string
-- cost Redis half the CPU of HMGET and HSET of the same fields. It starts
-- with its policy, so that one comparison tells an unchanged policy and
-- one unpack reads policy and state.

local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('TIME')
  now = time[1] * 1000000 + time[2]
end
local cost = tonumber(ARGV[2])

local DAY = 86400000000

-- days_from_civil and year_month convert between a UTC date and days
-- since 1970-01-01 (Howard Hinnant's algorithms, proleptic Gregorian).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end

local function year_month(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then return yoe + era * 400 + 1, m end
  return yoe + era * 400, m
end

-- month_start returns the first instant of the calendar month of t, and
-- month_end that of the next month.
local function month_start(t)
  local y, m = year_month(math.floor(t / DAY))
  return days_from_civil(y, m, 1) * DAY
end

local function month_end(t)
  local y, m = year_month(math.floor(t / DAY))
  if m == 12 then y, m = y + 1, 0 end
  return days_from_civil(y, m + 1, 1) * DAY
end

-- load returns the number of windows of policy spec and its state at
-- key, unpacked: st[1] the slack, per window i
-- st[3i-1] capacity, st[3i] interval, st[3i+1] period, then per window
-- st[3n+2i] t and st[3n+2i+1] v, and st[5n+2] the deadline. A state kept
-- under another policy carries over: each window starts from the old
-- window of the same kind and period, a bucket's spent tokens rescaled to
-- its new rate (rounded up, so that a change never mints a token); a
-- window with no counterpart starts afresh.
local function load(key, spec)
  if spec == '' then return 0 end
  local raw = redis.call('GET', key)
  local n = (#spec / 8 - 1) / 3
  local format = '<' .. string.rep('d', 2 + 5 * n)
  if raw and #raw == #spec + 16 * n + 8 and string.sub(raw, 1, #spec) == spec then
    return n, {struct.unpack(format, raw)}, format
  end
  local st = {struct.unpack('<' .. string.rep('d', 1 + 3 * n), spec)}
  local old, m = {}, 0
  if raw and (#raw / 8 - 2) % 5 == 0 then
    old = {struct.unpack('<' .. string.rep('d', #raw / 8), raw)}
    m = (#raw / 8 - 2) / 5
  end
  for i = 1, n do
    local interval, period = st[3 * i], st[3 * i + 1]
    local t, v = 0, 0
    for j = 1, m do
      local oiv = old[3 * j]
      if old[3 * j + 1] == period and (oiv < 0) == (interval < 0) then
        t, v = old[3 * m + 2 * j], old[3 * m + 2 * j + 1]
        if interval > 0 and oiv ~= interval and t > now then
          t = now + math.ceil((t - now) / oiv) * interval
        end
        break
      end
    end
    st[3 * n + 2 * i], st[3 * n + 2 * i + 1] = t, v
  end
  st[5 * n + 2] = old[5 * m + 2] or 0
  return n, st, format
end

-- admits brings each of the n windows of state st up to now, which
-- changes nothing a request could observe (a fixed window past its end
-- starts anew, a bucket's t is never in the past), and reports whether
-- all admit cost.
local function admits(n, st)
  local ok = true
  for i = 1, n do
    local capacity, interval, period = st[3 * i - 1], st[3 * i], st[3 * i + 1]
    local t, v = st[3 * n + 2 * i], st[3 * n + 2 * i + 1]
    if interval < 0 then
      local start
      if period > 0 then start = now - now % period else start = month_start(now) end
      if start > t then t, v = start, 0 end
      if v + cost > capacity then ok = false end
    else
      if now > t then t = now end
      if t + (cost - capacity) * interval > now then ok = false end
    end
    st[3 * n + 2 * i], st[3 * n + 2 * i + 1] = t, v
  end
  return ok
end

-- take takes cost from each of the n windows of st and writes the state
-- back. The expiry moves only when the state would
-- outlive the deadline set last, and then a slack further, so that most
-- writes keep their TTL instead of paying for PEXPIRE; an idle state
-- expires at most the slack after every window is back to its initial
-- state.
local function take(key, n, st, format)
  local need = 0 -- when every window is back to its initial state
  for i = 1, n do
    local t = 3 * n + 2 * i
    if st[3 * i] < 0 then
      st[t + 1] = st[t + 1] + cost
      if st[3 * i + 1] > 0 then
        need = math.max(need, st[t] + st[3 * i + 1])
      else
        need = math.max(need, month_end(st[t]))
      end
    else
      st[t] = st[t] + cost * st[3 * i]
      need = math.max(need, st[t])
    end
  end
  local last = 5 * n + 2
  local moved = need > st[last]
  if moved then st[last] = need + st[1] end
  local s = struct.pack(format, unpack(st, 1, last))
  if moved then
    redis.call('SET', key, s, 'PX', math.max(1, math.ceil((st[last] - now) / 1000)))
  else
    redis.call('SET', key, s, 'KEEPTTL')
  end
end

local na, sta, fa = load(KEYS[1], ARGV[3])
local nk, stk, fk = load(KEYS[2], ARGV[4])
local allowed = admits(na, sta)
allowed = admits(nk, stk) and allowed
local c, balance, refills
if ARGV[5] ~= '' then
  -- Credits. A balance is refilled at instants counted from 0 at the first
  -- refill: every day, or every month on the first refill's day of the
  -- month (the month's last day when it is shorter) and time of day, UTC.
  --
  -- c: granted, balance, refill, add, monthly, first, year, month, day, tod.
  local function refill_at(c, k)
    if c[5] == 0 then return c[6] + k * DAY end
    local months = c[8] - 1 + k
    local y, m = c[7] + math.floor(months / 12), months % 12 + 1
    local ny, nm = y, m + 1
    if nm == 13 then ny, nm = y + 1, 1 end
    local last = days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)
    return days_from_civil(y, m, math.min(c[9], last)) * DAY + c[10]
  end

  -- due returns how many refills are at or before t.
  local function due(c, t)
    if c[3] == 0 or t < c[6] then return 0 end
    if c[5] == 0 then return math.floor((t - c[6]) / DAY) + 1 end
    local y, m = year_month(math.floor(t / DAY))
    local k = (y - c[7]) * 12 + (m - c[8])
    if refill_at(c, k) <= t then k = k + 1 end
    return k
  end

  -- bring returns balance b after n refills of grant, brought up to now:
  -- another grant starts from its balance after the refills due at it.
  local function bring(c, grant, b, n)
    if grant ~= c[1] then b, n = c[2], due(c, c[1]) end
    local k = due(c, now)
    if k > n then
      if c[4] == 1 then b = b + (k - n) * c[3] else b = c[3] end
      n = k
    end
    return b, n
  end

  c = {struct.unpack('<dddddddddd', ARGV[5])}
  local raw = redis.call('GET', KEYS[3])
  local grant, b, n = nil, 0, 0
  if raw and #raw == 24 then grant, n, b = struct.unpack('<ddd', raw) end
  balance, refills = bring(c, grant, b, n)
  allowed = allowed and balance >= cost
  if allowed then balance = balance - cost end
  if grant ~= c[1] or balance ~= b or refills ~= n then
    -- A state equal to a new one is dropped: a balance lives only while
    -- it differs from what its grant and refills make it.
    local fb, fn = bring(c, c[1], c[2], due(c, c[1]))
    if balance == fb and refills == fn then
      redis.call('DEL', KEYS[3])
    else
      redis.call('SET', KEYS[3], struct.pack('<ddd', c[1], refills, balance))
    end
  end
end

if allowed and cost > 0 then
  if na > 0 then take(KEYS[1], na, sta, fa) end
  if nk > 0 then take(KEYS[2], nk, stk, fk) end
end

-- The reply: allowed and now, then t and v of every window as it is
-- after the decision, then the balance and refills.
local reply, r = {allowed and 1 or 0, now}, 2
for i = 1, na do
  reply[r + 1], reply[r + 2] = sta[3 * na + 2 * i], sta[3 * na + 2 * i + 1]
  r = r + 2
end
for i = 1, nk do
  reply[r + 1], reply[r + 2] = stk[3 * nk + 2 * i], stk[3 * nk + 2 * i + 1]
  r = r + 2
end
if c then reply[r + 1], reply[r + 2] = balance, refills end
return reply
