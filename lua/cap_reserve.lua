#!lua
--[[
cap_reserve.lua: reserve room under a user's cap in a cap group, in the user's own hash
slot, before claim.lua decides a claim on one of the group's campaigns (docs/design.md,
"Caps across campaigns"). Campaigns live in different slots, so no one script can see a
user's coupons of them all; this script keeps what the cap needs beside the user:

  held     coupons of the group the user holds unused, scored by their valid_until:
           an expired coupon drops out by itself; a used one is removed when the ledger
           sees the use (until then it counts: refusing more, never granting more)
  pending  reservations, "<claim id>\31<coupons>" scored by when they lapse: a claim
           in flight counts as granted until cap_settle.lua settles it
  daily    grants of the group, claim id scored by when granted (kept two days): today's
           count, and the mark that a grant was settled

KEYS:
  KEYS[1]   zset    held
  KEYS[2]   zset    pending
  KEYS[3]   zset    daily
ARGV:
  ARGV[1]   string  reservation: "<claim id>\31<coupons in the campaign's pack>"
  ARGV[2]   integer coupons in the pack
  ARGV[3]   integer most unused coupons ("" for no such cap)
  ARGV[4]   integer most grants a day ("" for no such cap)
  ARGV[5]   string  the group's tz_rules (lua/include/local_day.lua)
  ARGV[6]   integer milliseconds the reservation lives unless settled
Returns { code, payload }:
  "reserved", ""
  "cap_reached", coupons held and reserved
  "cap_daily_limit", milliseconds to the group's next local midnight
]]
--#include now_ms
--#include local_day

local held_key, pending_key, daily_key = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
local k = tonumber(ARGV[2])
local max_unused, max_daily = tonumber(ARGV[3]), tonumber(ARGV[4])

redis.call('ZREMRANGEBYSCORE', held_key, '-inf', now)
redis.call('ZREMRANGEBYSCORE', pending_key, '-inf', now)
redis.call('ZREMRANGEBYSCORE', daily_key, '-inf', now - 2 * 86400000)

local reserved, in_flight = 0, 0
for _, member in ipairs(redis.call('ZRANGE', pending_key, 0, -1)) do
  reserved = reserved + tonumber(string.match(member, '\31(%d+)$'))
  in_flight = in_flight + 1
end

if max_unused then
  local holds = redis.call('ZCARD', held_key) + reserved
  if holds + k > max_unused then
    return { 'cap_reached', tostring(holds) }
  end
end
if max_daily then
  local _, ms_to_midnight = local_day(ARGV[5], now)
  local day_start = now + ms_to_midnight - 86400000
  local today = redis.call('ZCOUNT', daily_key, day_start, '+inf') + in_flight
  if today + 1 > max_daily then
    return { 'cap_daily_limit', tostring(ms_to_midnight) }
  end
end
local lapses = now + tonumber(ARGV[6])
redis.call('ZADD', pending_key, lapses, ARGV[1])
redis.call('PEXPIREAT', pending_key, lapses, 'GT')
redis.call('PEXPIREAT', pending_key, lapses, 'NX')
return { 'reserved', '' }
