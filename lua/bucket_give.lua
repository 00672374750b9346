#!lua
--[[
bucket_give.lua: the first half of a transfer between two buckets of one campaign
(docs/design.md, "Hot campaigns over several buckets"): take grants' worth of stock,
and of budget when the campaign has one, out of this bucket and log the transfer as
owed to the other bucket.

What moves is counted in grants: one unit is one coupon pack of stock and, with a
budget, the pack's face value (unit_cost) of budget. A bucket can sell
min(remaining, floor((budget - committed) / unit_cost)) more grants: its capacity.
The units leave here before they arrive there (bucket_take.lua), so between the two
they are in neither bucket: never sold twice, only briefly unsellable. The log entry
stays until the transfer is settled, so a crash after this script leaves a record
that the sweeper completes.

KEYS:
  KEYS[1]   hash    this bucket's meta
  KEYS[2]   hash    this bucket's transfers out:
                    transfer id -> "<to>\31<units>\31<at ms>\31<budget moved>"
ARGV:
  ARGV[1]   string  transfer id (unique)
  ARGV[2]   integer the receiving bucket's index
  ARGV[3]   integer the most units to give; "" for half of the capacity (rounded up)
Returns { units, budget moved (minor units) }: { 0, 0 } when there was nothing to give
(or no such bucket; nothing written).
]]
--#include now_ms

local m = redis.call('HMGET', KEYS[1], 'remaining', 'budget', 'committed', 'unit_cost')
local remaining = tonumber(m[1] or '')  -- nil: unlimited stock (or no such bucket)
local budget = tonumber(m[2] or '')     -- nil: no budget
local unit_cost = tonumber(m[4] or '') or 0
local capacity = remaining
if budget and unit_cost > 0 then
  local affords = math.floor((budget - (tonumber(m[3] or '') or 0)) / unit_cost)
  capacity = capacity and math.min(capacity, affords) or affords
end
if not capacity or capacity <= 0 then
  return { 0, 0 }
end
local units = math.ceil(capacity / 2)
if ARGV[3] ~= '' then
  units = math.min(capacity, tonumber(ARGV[3]))
end
if units <= 0 then
  return { 0, 0 }
end
local moved = 0
if remaining then redis.call('HINCRBY', KEYS[1], 'remaining', -units) end
if budget then
  moved = units * unit_cost
  redis.call('HINCRBY', KEYS[1], 'budget', -moved)
end
redis.call('HSET', KEYS[2], ARGV[1],
  ARGV[2] .. '\31' .. units .. '\31' .. now_ms() .. '\31' .. moved)
return { units, moved }
