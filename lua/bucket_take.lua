#!lua
--[[
bucket_take.lua: the second half of a stock transfer (see bucket_give.lua): add the
given stock to this bucket, once per transfer id. The id is kept for the campaign's
life, so a late or repeated take (the giver's retry, the sweeper) adds nothing.

KEYS:
  KEYS[1]   hash    this bucket's meta
  KEYS[2]   hash    this bucket's transfers in: transfer id -> amount
ARGV:
  ARGV[1]   string  transfer id
  ARGV[2]   integer amount
Returns:
  1         added now
  0         this transfer was added before (nothing written)
  -1        no such bucket yet (nothing written; the sweeper creates it, then retries)
]]
--#include campaign_missing

if campaign_missing(KEYS[1]) then
  return -1
end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('HINCRBY', KEYS[1], 'remaining', tonumber(ARGV[2]))
return 1
