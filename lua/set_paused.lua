#!lua
--[[
set_paused.lua: pause or resume granting on a campaign, at once.

KEYS:
  KEYS[1]   hash    campaign meta
ARGV:
  ARGV[1]   string  "1" to pause, "0" to resume
Returns:
  1         done (also when it was already in that state)
  0         no such campaign (nothing written)
]]
--#include campaign_missing

if campaign_missing(KEYS[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'paused', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'defv', 1)  -- other buckets copy the change
return 1
