#!lua
--[[
claim.lua: decide a batch of claims on ONE campaign, in order, atomically.

Every way of issuing a coupon comes here: a tap on the grab button (source
"grab"), an operator grant or trigger (source "grant"), a redemption code (source
"code"), a winner of a draw (source "draw"), and an entry into a drawn campaign.
Every decision happens here, against the server clock, in this order:
idempotent replay, admission (a drawn campaign takes entries, not grabs), the holdout (a
user of the control group is never granted, by any source, and is recorded), the code (for
source "code": it exists for this campaign, has uses left, and this user has not redeemed
it as often as it allows), claim window (entry window), pause, eligibility (channel,
segments, excluded segments), blocklist, device id present, proof of work (present,
strong enough, never spent before: spent here), per-user rate limit, per-IP rate limit,
lifetime limit, daily limit, per-device limit, budget, stock. A grant then writes, in
this order: stock decrement (none when stock is unlimited), seq, the budget committed,
a random coupon's face value (drawn from the campaign's multiset, without replacement),
per-user (and per-device) counts, the replay record, and the stream entry. The
grant and its stream record exist together or not at all. Rejections write only
their counters (rate-limit window, rejected-by-code), never stock.

KEYS (all under the campaign's hash tag, built by flashclaim/keys.py):
  KEYS[1]        hash    campaign meta (fields written by create_campaign.lua)
  KEYS[2]        hash    per-user grant counts: user_id -> integer
  KEYS[3]        hash    replay records: dedup token -> claim JSON
  KEYS[4]        hash    rejections: error code -> integer
  KEYS[5]        stream  the claim stream (entry layout below)
  KEYS[6]        hash    per-user grants today: user_id -> "<day number>:<count>"
  KEYS[7]        hash    redemption codes of this hash slot: code hash ->
                         "<campaign id>:<uses left>:<uses per user>" (read only for source
                         "code"; an entry without the last part allows one use per user)
  KEYS[8]        hash    coupons granted in this hash slot: coupon id ->
                         "<campaign>\31<valid_until ms>\31<user>\31<most off, minor units>"
                         (for redemption write-back)
  KEYS[9]        hash    code redemptions per user in this hash slot:
                         "<code hash>\31<user>" -> count (source "code" only)
  KEYS[10]       hash    per-device counts: device id -> grants (entries, on a drawn
                         campaign), kept when the campaign has a per_device_limit
  KEYS[11]       zset    spent challenge solutions: token id scored by its expiry (ms);
                         expired members are dropped as claims go by
  KEYS[12]       hash    a drawn campaign's entries: user_id -> "<entered_at ms>\31<device>"
  KEYS[13]       hash    a holdout's control users decided so far: user_id -> first (ms)
  KEYS[14]       stream  a holdout's control users, one entry each, the first time (fields
                         v, campaign_id, user_id, at, source): the ledger keeps the groups
  KEYS[14+i]     string  rate-limit window counter of claim i's user (PX = window)
  KEYS[14+n+i]   string  rate-limit window counter of claim i's client IP, present only
                         when some claim of the batch carries an IP limit

ARGV:
  ARGV[i]        string  claim i (1..n, n = #ARGV): twenty fields joined by \31 (unit
                         separator; no field can contain it), in this order:
                 claim id        server-made, unique; also the request id
                 dedup token     "k:<user>:<sha256(Idempotency-Key)>", "r:<claim id>",
                                 "g:<grant id>:<user>" or "c:<code hash>:<user>"
                 user id         [A-Za-z0-9_.:@-]{1,128}
                 user tags       ",t1,t2," ("" when none)
                 channel         "" when none given
                 idempotency key as sent ("" when none)
                 source          "grab", "grant", "code" or "draw"
                 source ref      the grant id, or the code's keyed hash ("" for a grab
                                 or a draw)
                 blocked         "1" when the user is on the blocklist (the service's copy)
                 client IP       "" when the service has no per-IP limit
                 IP limit        taps per window from one IP (integer, "" with no IP)
                 IP window       milliseconds ("" with no IP)
                 retry of        when this claim is asked again after stock (budget) moved
                                 into its bucket: the code of its last answer ("sold_out" or
                                 "budget_exhausted"), which was counted, and so was the tap by
                                 the rate limits; "" for a first decision
                 device id       the caller's device ("" when none was sent)
                 challenge       "<token id>:<expires ms>:<bits>" of a proof of work the
                                 service verified ("" when none came with the request)
                 entry           "1": an entry into a drawn campaign, not a claim
                 ip hash         keyed hashes (the service's risk key) of the client's
                 net hash        address, of its /24 (IPv4) or /64 (IPv6), and of the
                 device hash     device: recorded in the stream, never the raw values
                 personal value  an operator grant's value for the pack's personal coupon
                                 (minor units, within its bounds: the service checked); ""
                                 for its default value
  (One argument per claim: a batch costs the client one string to pack per claim.)
  A grant is not a tap: the rate limits do not apply to source "grant".

Returns a flat array of 3n values: for claim i, code at 3i-2, payload at 3i-1,
and at 3i "1" when the user now holds per_user_limit grants ("0" otherwise).
  code                payload
  "granted"           claim JSON (times in epoch ms)
  "replay"            the claim JSON stored when this token was granted
  "code_not_found"    ""
  "code_used"         ""
  "code_already_redeemed" ""
  "campaign_not_found" ""
  "not_started"       starts_at (epoch ms)
  "ended"             ends_at (epoch ms)
  "paused"            ""
  "not_eligible"      "channel" or "segment"
  "blocked"           ""
  "rate_limited"      milliseconds until the window resets
  "already_claimed"   the user's grant count
  "daily_limit"       milliseconds until the campaign's next local midnight
  "sold_out"          ""
  "device_required"   ""   (the campaign caps devices and refuses a request without one)
  "device_limit"      the grants (entries) of the device
  "challenge_required" ""  (the campaign asks for a proof of work this claim lacks)
  "challenge_spent"   ""   (this solution was spent on an earlier decision)
  "draw_campaign"     ""   (a grab or code on a drawn campaign: it takes entries)
  "not_a_draw"        ""   (an entry into a campaign that is not drawn)
  "entries_closed"    entries_until (epoch ms)
  "entered"           entered_at (epoch ms): the entry is recorded; "<entered_at>:again"
                      when it was recorded before
  "budget_exhausted"  the budget left (minor units), less than one grant's face value
  "holdout"           ""   (the user is in the campaign's control group: never granted)

A drawn campaign (admission "draw"): entries are decided here like claims (window from
starts_at to entries_until, eligibility, blocklist, device, challenge, rate and user
limits) and recorded in KEYS[12]; its grants come only from the draw (source "draw",
which skips the time window, pause, eligibility, device and rate checks: the entry
passed them) and from operator grants.

Stream entry fields: v, claim_id, campaign_id, user_id, seq, claimed_at,
channel, idempotency_key, source, source_ref, tags, claim, ip_hash, net_hash,
device_hash (see docs/stream.md).
]]
--#include now_ms
--#include local_day
--#include face_values

local meta_key, users_key, dedup_key, rejected_key, stream_key, daily_key, codes_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local coupons_key, code_users_key = KEYS[8], KEYS[9]
local n = #ARGV
local devices_key, spent_key, entries_key = KEYS[10], KEYS[11], KEYS[12]
local control_key, holdout_key = KEYS[13], KEYS[14]
local FIXED_KEYS = 14
local SCHEMA_VERSION = '3'

local results = {}
local function reply(code, payload, holds_limit)
  results[#results + 1] = code
  results[#results + 1] = payload
  results[#results + 1] = holds_limit and '1' or '0'
end

local m = redis.call('HMGET', meta_key, 'id', 'remaining', 'paused', 'starts_at',
  'ends_at', 'per_user_limit', 'channels', 'segments', 'rl_max', 'rl_window_ms', 'coupons',
  'excluded', 'daily_limit', 'tz_rules', 'bucket', 'buckets', 'per_device_limit',
  'device_required', 'pow_bits', 'admission', 'entries_until', 'draw_state', 'budget',
  'committed', 'unit_cost', 'values_left', 'holdout_pct', 'holdout_salt')
if not m[1] then
  for _ = 1, n do reply('campaign_not_found', '') end
  return results
end

local campaign_id = m[1]
local remaining = tonumber(m[2])  -- nil: unlimited stock
local paused = m[3] == '1'
local starts_at = tonumber(m[4])
local ends_at = tonumber(m[5]) -- nil when the campaign has no end
local per_user_limit = tonumber(m[6])
local channels = m[7]             -- ",app,web," or "" for any channel
local segments = m[8]             -- ",vip,new," or "" for anyone
local rl_max = tonumber(m[9])
local rl_window_ms = tonumber(m[10])
local coupons = nil               -- decoded on the first grant only
local excluded = m[12] or ''      -- ",blocked_tag," or "" for none
local daily_limit = tonumber(m[13] or '')  -- nil: no daily limit
-- A campaign spread over n buckets (docs/design.md): this is bucket b, and its grants
-- take the seqs b+1, b+1+n, b+1+2n, ... (one bucket: 1, 2, 3, ...).
local bucket = tonumber(m[15] or '0')
local buckets = tonumber(m[16] or '1')
local per_device_limit = tonumber(m[17] or '')  -- nil: no device cap
local device_required = m[18] == '1'
local pow_bits = tonumber(m[19] or '')  -- nil: no proof of work asked for
local drawn = m[20] == 'draw'
local entries_until = tonumber(m[21] or '')
local draw_started = m[22] == 'drawing' or m[22] == 'done'  -- entries are frozen
-- A budget (minor units): what the grants may commit in all, each grant committing the
-- pack's face value (unit_cost); nil: no budget.
local budget = tonumber(m[23] or '')
local committed = tonumber(m[24] or '') or 0
local unit_cost = tonumber(m[25] or '') or 0
-- A random coupon's face values not yet drawn, "<value>:<count>,..." ("" for none): the
-- stock is exactly this multiset, so their counts always add up to `remaining`.
local values_left = m[26] or ''
-- A holdout (A/B): this percentage of users, by a stable hash of salt and user id, is the
-- control group; nil: no holdout.
local holdout_pct = tonumber(m[27] or '')
local holdout_salt = m[28] or ''

local now = now_ms()

-- Today's number and the ms to the next midnight, in the campaign's time zone.
local today, ms_to_midnight
if daily_limit then today, ms_to_midnight = local_day(m[14], now) end

local function has_any(set, tags)
  for seg in string.gmatch(set, '[^,]+') do
    if string.find(tags, ',' .. seg .. ',', 1, true) then return true end
  end
  return false
end

-- Draw one face value without replacement, uniformly over the units left (by the claim
-- id's SHA-1: server-made and unguessable, and the same on a replica, which replays the
-- script's effects anyway), and take it out of the multiset.
local function draw_value(claim_id)
  local values, total = parse_values(values_left)
  local r = tonumber(string.sub(redis.sha1hex(claim_id), 1, 12), 16) % total
  local drawn = nil
  for _, vc in ipairs(values) do
    if not drawn and r < vc[2] then
      drawn = vc[1]
      vc[2] = vc[2] - 1
    elseif not drawn then
      r = r - vc[2]
    end
  end
  values_left = format_values(values)
  redis.call('HSET', meta_key, 'values_left', values_left)
  return drawn
end

-- The claim's JSON (`drawn`: a random coupon's value; `personal`: a personal coupon's,
-- "" for its default); also records each coupon in the
-- slot's coupons hash (for write-back). Strings go through cjson, so no id or channel can
-- ever break the record's JSON (the service validates them too; this is the second wall).
local function claim_json(claim_id, user_id, seq, channel, source, drawn, personal)
  coupons = coupons or cjson.decode(m[11])
  local id_json = cjson.encode(claim_id)
  local parts = {}
  local issued = {}  -- coupon id, "<campaign>\31<valid_until>\31<user>\31<cap>", ...
  for k, c in ipairs(coupons) do
    local from, till
    if c.days then
      from, till = now, now + c.days * 86400000
    else
      from, till = c.from, c.till
    end
    local fragment, cap = c.f, c.cap
    if c.rnd or c.dv then  -- the value is the claim's own: drawn, or personal
      cap = c.rnd and drawn or (personal ~= '' and tonumber(personal) or c.dv)
      fragment = string.gsub(c.f, '"__value__"', string.format('%d', cap), 1)
    end
    parts[k] = string.format('{"coupon_id":%s,%s,"valid_from":%d,"valid_until":%d}',
      cjson.encode(claim_id .. '-' .. k), fragment, from, till)
    issued[#issued + 1] = claim_id .. '-' .. k
    issued[#issued + 1] = campaign_id .. '\31' .. string.format('%d', till) .. '\31' .. user_id
      .. '\31' .. (cap and string.format('%d', cap) or '')
  end
  redis.call('HSET', coupons_key, unpack(issued))
  local channel_json = 'null'
  if channel ~= '' then channel_json = cjson.encode(channel) end
  return string.format(
    '{"claim_id":%s,"campaign_id":%s,"user_id":%s,"seq":%d,"claimed_at":%d,"channel":%s,"source":%s,"coupons":[%s]}',
    id_json, cjson.encode(campaign_id), cjson.encode(user_id), seq, now, channel_json,
    cjson.encode(source), table.concat(parts, ','))
end

local retry_of = ''  -- the claim being decided: its last answer's code when a retry

-- A refusal, counted by its code; a retry's last answer was counted already, so it is
-- counted again only as another code (and uncounted as the old one).
local function reject(code, payload, holds_limit)
  if code ~= retry_of then
    redis.call('HINCRBY', rejected_key, code, 1)
    if retry_of ~= '' then redis.call('HINCRBY', rejected_key, retry_of, -1) end
  end
  reply(code, payload, holds_limit)
end

local function fields_of(packed)
  local f = {}
  for field in string.gmatch(packed .. '\31', '([^\31]*)\31') do f[#f + 1] = field end
  return f
end

-- A fixed-window counter: the taps so far, and the window's milliseconds left.
local function count_tap(key, window_ms)
  local taps = redis.call('INCR', key)
  if taps == 1 then redis.call('PEXPIRE', key, window_ms) end
  return taps
end

-- Grants today of one user: "<day>:<count>", where an older day counts as none.
local function today_count(user_id)
  local v = redis.call('HGET', daily_key, user_id)
  if not v then return 0 end
  local day, count = string.match(v, '^(-?%d+):(%d+)$')
  if tonumber(day) ~= today then return 0 end
  return tonumber(count)
end

-- The control group: the first 32 bits of SHA-1("<salt>:<user>") mod 100 below the
-- percentage (flashclaim/holdout.py computes the same for reports and tests).
local function in_control(user_id)
  if not holdout_pct then return false end
  local h = tonumber(string.sub(redis.sha1hex(holdout_salt .. ':' .. user_id), 1, 8), 16)
  return h % 100 < holdout_pct
end

-- A control user's first decision is recorded once, so the groups are known afterwards.
local function record_control(user_id, source)
  if redis.call('HSETNX', control_key, user_id, now) == 1 then
    redis.call('XADD', holdout_key, '*', 'v', '1', 'campaign_id', campaign_id,
      'user_id', user_id, 'at', now, 'source', source)
  end
end

-- Spent solutions expire with their tokens: the set holds only those still valid.
if pow_bits then redis.call('ZREMRANGEBYSCORE', spent_key, '-inf', now) end

-- Spend a proof of work ("<token id>:<expires ms>:<bits>"): false when it was spent before.
local function spend(challenge)
  local token_id, expires = string.match(challenge, '^([^:]+):(%d+):')
  return redis.call('ZADD', spent_key, 'NX', expires, token_id) == 1
end

local function challenge_bits(challenge)
  return tonumber(string.match(challenge, ':(%d+)$') or '0')
end

for i = 1, n do
  local f = fields_of(ARGV[i])
  local claim_id, token, user_id, tags, channel, idem_key = f[1], f[2], f[3], f[4], f[5], f[6]
  local source, source_ref, blocked, client_ip = f[7], f[8], f[9] == '1', f[10]
  -- a retry after stock moved into this bucket was counted already (rate limits, answer)
  retry_of = f[13]
  local retry = retry_of ~= ''
  local device, challenge, entry = f[14], f[15], f[16] == '1'
  local by_draw = source == 'draw'  -- a winner of the draw: its entry passed the checks
  local by_user = source == 'grab' or entry  -- what the device and challenge rules cover
  local is_tap = source ~= 'grant' and not by_draw and not retry
  local caps_device = per_device_limit and by_user
  local code_uses = nil  -- uses left of the code being redeemed, when it is this campaign's
  local code_per_user, code_user, redeemed_by_user = 1, '', 0
  if source == 'code' then
    local entry_of_code = redis.call('HGET', codes_key, source_ref)
    if entry_of_code then
      local owner, uses, per_user = string.match(entry_of_code, '^([^:]*):(%d+):?(%d*)$')
      if owner == campaign_id then
        code_uses = tonumber(uses)
        code_per_user = tonumber(per_user) or 1
        code_user = source_ref .. '\31' .. user_id
        redeemed_by_user = tonumber(redis.call('HGET', code_users_key, code_user) or '0')
      end
    end
  end
  local stored = nil
  if entry then
    local entered = redis.call('HGET', entries_key, user_id)
    if entered then stored = string.match(entered, '^(%d+)') end
  else
    stored = redis.call('HGET', dedup_key, token)
  end
  if stored and entry then
    reply('entered', stored .. ':again')
  elseif stored then
    reply('replay', stored)
  elseif entry and not drawn then
    reject('not_a_draw', '')
  elseif drawn and not entry and (source == 'grab' or source == 'code') then
    reject('draw_campaign', '')
  elseif in_control(user_id) then
    record_control(user_id, entry and 'entry' or source)
    reject('holdout', '')
  elseif source == 'code' and not code_uses then
    reject('code_not_found', '')
  elseif source == 'code' and code_uses <= 0 then
    reject('code_used', '')
  elseif source == 'code' and redeemed_by_user >= code_per_user then
    reject('code_already_redeemed', '')
  elseif not by_draw and now < starts_at then
    reject('not_started', tostring(starts_at))
  elseif entry and (draw_started or now >= entries_until) then
    reject('entries_closed', tostring(entries_until))
  elseif not by_draw and ends_at and now >= ends_at then
    reject('ended', tostring(ends_at))
  elseif not by_draw and paused then
    reject('paused', '')
  elseif not by_draw and channels ~= '' and (channel == '' or not string.find(channels, ',' .. channel .. ',', 1, true)) then
    reject('not_eligible', 'channel')
  elseif not by_draw and segments ~= '' and not has_any(segments, tags) then
    reject('not_eligible', 'segment')
  elseif not by_draw and excluded ~= '' and has_any(excluded, tags) then
    reject('not_eligible', 'segment')
  elseif blocked then
    reject('blocked', '')
  elseif caps_device and device_required and device == '' then
    reject('device_required', '')
  elseif pow_bits and by_user and (challenge == '' or challenge_bits(challenge) < pow_bits) then
    reject('challenge_required', '')
  elseif pow_bits and by_user and not retry and not spend(challenge) then
    reject('challenge_spent', '')
  else
    local rl_key = KEYS[FIXED_KEYS + i]
    local held = tonumber(redis.call('HGET', users_key, user_id) or '0')
    local ip_key = client_ip ~= '' and KEYS[FIXED_KEYS + n + i] or nil
    local today_n = daily_limit and today_count(user_id) or 0
    local on_device = 0
    if caps_device and device ~= '' then
      on_device = tonumber(redis.call('HGET', devices_key, device) or '0')
    end
    if is_tap and count_tap(rl_key, rl_window_ms) > rl_max then
      reject('rate_limited', tostring(redis.call('PTTL', rl_key)))
    elseif is_tap and ip_key and count_tap(ip_key, tonumber(f[12])) > tonumber(f[11]) then
      reject('rate_limited', tostring(redis.call('PTTL', ip_key)))
    elseif held >= per_user_limit then
      reject('already_claimed', tostring(held), true)
    elseif daily_limit and today_n >= daily_limit then
      reject('daily_limit', tostring(ms_to_midnight))
    elseif caps_device and on_device >= per_device_limit then
      reject('device_limit', tostring(on_device))
    elseif entry then
      -- an entry holds no stock: the draw decides who is granted
      redis.call('HSET', entries_key, user_id, now .. '\31' .. device)
      if caps_device and device ~= '' then redis.call('HINCRBY', devices_key, device, 1) end
      redis.call('HINCRBY', meta_key, 'entrants', 1)
      reply('entered', tostring(now))
    elseif budget and committed + unit_cost > budget then
      reject('budget_exhausted', tostring(budget - committed))
    elseif remaining and remaining <= 0 then
      reject('sold_out', '')
    else
      -- the grant: stock first, then everything that records it
      if remaining then remaining = redis.call('HINCRBY', meta_key, 'remaining', -1) end
      if retry then  -- its last answer was a refusal after all: no longer counted
        redis.call('HINCRBY', rejected_key, retry_of, -1)
      end
      local seq = (redis.call('HINCRBY', meta_key, 'granted', 1) - 1) * buckets + bucket + 1
      if budget then committed = redis.call('HINCRBY', meta_key, 'committed', unit_cost) end
      held = redis.call('HINCRBY', users_key, user_id, 1)
      if daily_limit then
        redis.call('HSET', daily_key, user_id, today .. ':' .. (today_n + 1))
      end
      if caps_device and device ~= '' then redis.call('HINCRBY', devices_key, device, 1) end
      if code_uses then
        redis.call('HSET', codes_key, source_ref,
          campaign_id .. ':' .. (code_uses - 1) .. ':' .. code_per_user)
        redis.call('HINCRBY', code_users_key, code_user, 1)
      end
      local drawn = nil
      if values_left ~= '' then drawn = draw_value(claim_id) end
      local claim = claim_json(claim_id, user_id, seq, channel, source, drawn, f[20] or '')
      redis.call('HSET', dedup_key, token, claim)
      redis.call('XADD', stream_key, '*', 'v', SCHEMA_VERSION, 'claim_id', claim_id,
        'campaign_id', campaign_id, 'user_id', user_id, 'seq', seq, 'claimed_at', now,
        'channel', channel, 'idempotency_key', idem_key, 'source', source,
        'source_ref', source_ref, 'tags', tags, 'claim', claim,
        'ip_hash', f[17], 'net_hash', f[18], 'device_hash', f[19])
      reply('granted', claim, held >= per_user_limit)
    end
  end
end
return results
