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
--          interval, t and v. KEYS[3] the account's credit balance: its
--          grant, the refills applied and the balance. All carry the
--          account's hash tag, so that Cluster keeps them in one slot.
-- ARGV[1]  now, or "" to read Redis TIME (tests pass a clock).
-- ARGV[2]  the cost.
-- ARGV[3]  the account's policy, ARGV[4] the key's, "" for none: little-
--          endian doubles, the expiry slack, then per window its capacity
--          (a bucket's burst, a fixed window's limit), its interval
--          (microseconds per token of a bucket, or minus the period of a
--          fixed window) and its period.
-- ARGV[5]  the credits, "" for none: little-endian doubles, the grant
--          (its instant), the balance granted, the refill amount, 1 to
--          add it (0 to replace), 1 for monthly refills (0 daily), the
--          first refill, and its year, month, day and time of day.
--
-- Reply: little-endian doubles: allowed (1 or 0), now, then t and v of
-- each window of the account's policy and then of the key's, as they are
-- after the decision, then with credits the balance and the number of
-- refills applied. The Go side turns them into what each window
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

-- load reads the policy spec and the state at key. It returns the number
-- of windows, the spec unpacked (sp[1] the slack, then per window i
-- sp[3i-1] capacity, sp[3i] interval, sp[3i+1] period) and the state
-- unpacked (st[1] the deadline, then per window st[4i-2] period,
-- st[4i-1] interval, st[4i] t, st[4i+1] v). A state kept under another
-- policy carries over: each window starts from the old window of the
-- same kind and period, a bucket's spent tokens rescaled to its new rate
-- (rounded up, so that a change never mints a token); a window with no
-- counterpart starts afresh.
local function load(key, spec)
  if spec == '' then return 0 end
  local n = (#spec / 8 - 1) / 3
  local sp = {struct.unpack('<' .. string.rep('d', 1 + 3 * n), spec)}
  local raw = redis.call('GET', key)
  local st
  if raw and #raw == 8 + 32 * n then
    st = {struct.unpack('<' .. string.rep('d', 1 + 4 * n), raw)}
    for i = 1, n do
      if st[4 * i - 2] ~= sp[3 * i + 1] or st[4 * i - 1] ~= sp[3 * i] then
        st = nil -- another policy: carry it over below
        break
      end
    end
    if st then return n, sp, st end
  end
  local old = {}
  if raw and #raw % 32 == 8 then
    old = {struct.unpack('<' .. string.rep('d', (#raw / 8)), raw)}
  end
  st = {old[1] or 0}
  for i = 1, n do
    local interval, period = sp[3 * i], sp[3 * i + 1]
    local t, v = 0, 0
    for j = 1, (#old - 2) / 4 do
      local oiv = old[4 * j - 1]
      if old[4 * j - 2] == period and (oiv < 0) == (interval < 0) then
        t, v = old[4 * j], old[4 * j + 1]
        if interval > 0 and oiv ~= interval and t > now then
          t = now + math.ceil((t - now) / oiv) * interval
        end
        break
      end
    end
    st[4 * i - 2], st[4 * i - 1], st[4 * i], st[4 * i + 1] = period, interval, t, v
  end
  return n, sp, st
end

-- admits brings each of the n windows of state st up to now, which
-- changes nothing a request could observe (a fixed window past its end
-- starts anew, a bucket's t is never in the past), and reports whether
-- all admit cost.
local function admits(n, sp, st)
  local ok = true
  for i = 1, n do
    local capacity, interval, period = sp[3 * i - 1], sp[3 * i], sp[3 * i + 1]
    local t, v = st[4 * i], st[4 * i + 1]
    if interval < 0 then
      local start = now - now % period
      if start > t then t, v = start, 0 end
      if v + cost > capacity then ok = false end
    else
      if now > t then t = now end
      if t + (cost - capacity) * interval > now then ok = false end
    end
    st[4 * i], st[4 * i + 1] = t, v
  end
  return ok
end

-- take takes cost from each of the n windows of st and writes the state
-- back. The expiry moves only when the state would outlive the deadline
-- set last, and then a slack further, so that most writes keep their TTL
-- instead of paying for PEXPIRE; an idle state expires at most the slack
-- after every window is back to its initial state.
local function take(key, n, sp, st)
  if n == 0 then return end
  local need = 0 -- when every window is back to its initial state
  for i = 1, n do
    if sp[3 * i] < 0 then
      st[4 * i + 1] = st[4 * i + 1] + cost
      need = math.max(need, st[4 * i] + sp[3 * i + 1])
    else
      st[4 * i] = st[4 * i] + cost * sp[3 * i]
      need = math.max(need, st[4 * i])
    end
  end
  local format = '<' .. string.rep('d', 1 + 4 * n)
  if need <= st[1] then
    redis.call('SET', key, struct.pack(format, unpack(st, 1, 1 + 4 * n)), 'KEEPTTL')
  else
    st[1] = need + sp[1]
    redis.call('SET', key, struct.pack(format, unpack(st, 1, 1 + 4 * n)), 'PX', math.max(1, math.ceil((st[1] - now) / 1000)))
  end
end

-- Credits. A balance is refilled at instants counted from 0 at the first
-- refill: every day, or every month on the first refill's day of the
-- month (the month's last day when it is shorter) and time of day, UTC.
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

local na, spa, sta = load(KEYS[1], ARGV[3])
local nk, spk, stk = load(KEYS[2], ARGV[4])
local allowed = admits(na, spa, sta)
allowed = admits(nk, spk, stk) and allowed
local c, balance, refills
if ARGV[5] ~= '' then
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
  take(KEYS[1], na, spa, sta)
  take(KEYS[2], nk, spk, stk)
end

local reply = {allowed and 1 or 0, now}
for i = 1, na do
  reply[#reply + 1] = sta[4 * i]
  reply[#reply + 1] = sta[4 * i + 1]
end
for i = 1, nk do
  reply[#reply + 1] = stk[4 * i]
  reply[#reply + 1] = stk[4 * i + 1]
end
if c then
  reply[#reply + 1] = balance
  reply[#reply + 1] = refills
end
return struct.pack('<' .. string.rep('d', #reply), unpack(reply))
