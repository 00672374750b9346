#!lua
--[[
mirror_campaign.lua: copy a bucketed campaign's definition from bucket 0 to one of
its other buckets, creating that bucket (with no stock) if it does not exist yet.

Bucket 0 counts its definition's changes in "defv" (update, end, pause and resume
bump it); a copy older than the one here is ignored, so two copies racing can never
leave a bucket behind.

KEYS:
  KEYS[1]   hash    the bucket's meta
ARGV:
  ARGV[1]   integer the bucket's index (1..n-1)
  ARGV[2]   integer n, the campaign's bucket count
  ARGV[3]   integer bucket 0's defv when its meta was read
  ARGV[4]   string  "1" when the campaign's stock is unlimited
  ARGV[5]   string  "1" when the campaign has a budget (a new bucket starts with none of
                    it: transfers bring it, like stock)
  ARGV[6..] string  field, value, ... (every definition field of bucket 0's meta)
Returns:
  2         created
  1         updated
  0         already as new (nothing written)
]]

local defv = tonumber(ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  local none = ARGV[4] == '1' and '' or '0'
  local budget = ARGV[5] == '1' and '0' or ''
  redis.call('HSET', KEYS[1], unpack(ARGV, 6))
  redis.call('HSET', KEYS[1], 'remaining', none, 'stock', none, 'granted', 0,
    'bucket', ARGV[1], 'buckets', ARGV[2], 'defv', defv, 'budget', budget, 'committed', 0,
    'values_left', '')
  return 2
end
if tonumber(redis.call('HGET', KEYS[1], 'defv') or '0') >= defv then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('HSET', KEYS[1], 'defv', defv)
return 1
