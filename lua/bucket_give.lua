#!lua
--[[
bucket_give.lua: the first half of a stock transfer between two buckets of one
campaign (docs/design.md, "Hot campaigns over several buckets"): take stock out of
this bucket and log the transfer as owed to the other bucket.

The stock leaves here before it arrives there (bucket_take.lua), so between the two
it is in neither bucket: never sold twice, only briefly unsellable. The log entry
stays until the transfer is settled, so a crash after this script leaves a record
that the sweeper completes.

KEYS:
  KEYS[1]   hash    this bucket's meta
  KEYS[2]   hash    this bucket's transfers out: transfer id -> "<to>\31<amount>\31<at ms>"
ARGV:
  ARGV[1]   string  transfer id (unique)
  ARGV[2]   integer the receiving bucket's index
  ARGV[3]   integer the most to give; "" for half of what remains (rounded up)
Returns the amount given (0: nothing here to give, or no such bucket; nothing written).
]]
--#include now_ms

local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining') or '')
if not remaining or remaining <= 0 then
  return 0
end
local amount = math.ceil(remaining / 2)
if ARGV[3] ~= '' then
  amount = math.min(remaining, tonumber(ARGV[3]))
end
if amount <= 0 then
  return 0
end
local now = now_ms()
redis.call('HINCRBY', KEYS[1], 'remaining', -amount)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '\31' .. amount .. '\31' .. now)
return amount
