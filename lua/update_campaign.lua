#!lua
--[[
update_campaign.lua: apply a PATCH to a campaign's definition, atomically.

The service validated the whole new definition; this script only guards what it
cannot see: another PATCH in between (rev), an end already reached, a coupon
change after the first grant, and an end time that is already past.

KEYS:
  KEYS[1]   hash    campaign meta
ARGV:
  ARGV[1]   integer the rev the new definition was built on
  ARGV[2]   string  "1" when the coupons change, else "0"
  ARGV[3]   string  the new ends_at (epoch ms) or "" for no end
  ARGV[4..] string  field, value, ... (flashclaim/campaigns.py patched_fields)
Returns an array {code, detail}:
  {"ok", new rev}                 applied
  {"campaign_not_found", ""}      no such campaign (nothing written)
  {"conflict", current rev}       changed meanwhile: read it again (nothing written)
  {"ended", ends_at}              the campaign has ended (nothing written)
  {"coupons_fixed", granted}      coupons cannot change once one is granted
  {"ends_in_past", now}           the new ends_at is not in the future
]]
--#include now_ms

local m = redis.call('HMGET', KEYS[1], 'id', 'rev', 'ends_at', 'granted')
if not m[1] then
  return {'campaign_not_found', ''}
end
local now = now_ms()
if tonumber(m[2] or '0') ~= tonumber(ARGV[1]) then
  return {'conflict', m[2] or '0'}
end
if m[3] ~= '' and tonumber(m[3]) <= now then
  return {'ended', m[3]}
end
if ARGV[2] == '1' and tonumber(m[4]) > 0 then
  return {'coupons_fixed', m[4]}
end
if ARGV[3] ~= '' and tonumber(ARGV[3]) <= now then
  return {'ends_in_past', tostring(now)}
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('HINCRBY', KEYS[1], 'defv', 1)  -- other buckets copy the change
return {'ok', tostring(redis.call('HINCRBY', KEYS[1], 'rev', 1))}
