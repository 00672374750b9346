#!lua
--[[
end_campaign.lua: end a campaign now (Redis clock); claims after this are "ended".

KEYS:
  KEYS[1]   hash    campaign meta
ARGV:
  (none)
Returns an array {code, ends_at}:
  {"ok", now}                       ended now
  {"already_ended", ends_at}        it had ended before (nothing written)
  {"campaign_not_found", ""}        no such campaign (nothing written)
]]
--#include now_ms

local m = redis.call('HMGET', KEYS[1], 'id', 'ends_at')
if not m[1] then
  return {'campaign_not_found', ''}
end
local now = now_ms()
if m[2] ~= '' and tonumber(m[2]) <= now then
  return {'already_ended', m[2]}
end
redis.call('HSET', KEYS[1], 'ends_at', now)
redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('HINCRBY', KEYS[1], 'defv', 1)  -- other buckets copy the change
return {'ok', tostring(now)}
