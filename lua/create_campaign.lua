#!lua
--[[
create_campaign.lua: create a campaign's meta hash unless the id is taken.

KEYS:
  KEYS[1]   hash    campaign meta
ARGV:
  ARGV[1..] string  field, value, field, value, ... (flashclaim/campaigns.py
                    builds them: id, stock, remaining, granted, paused, windows,
                    limits, eligibility, coupon templates, the public definition)
Returns:
  1         created
  0         a campaign with this id already exists (nothing written)
]]

if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
