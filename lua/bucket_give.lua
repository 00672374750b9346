#!lua
--[[
bucket_give.lua: the first half of a transfer between two buckets of one campaign
(docs/design.md, "Hot campaigns over several buckets"): take grants' worth of stock,
and of budget when the campaign has one, out of this bucket and log the transfer as
owed to the other bucket.

What moves is counted in grants: one unit is one coupon pack of stock and, with a
budget, the pack's face value (unit_cost) of budget. With a random coupon the stock is a
multiset of face values (values_left), so the units take values with them: each value
its share of the units, in proportion to its count (largest remainder), so the multiset
over all buckets and transfers stays the campaign's. A bucket can sell
min(remaining, floor((budget - committed) / unit_cost)) more grants: its capacity.
The units leave here before they arrive there (bucket_take.lua), so between the two
they are in neither bucket: never sold twice, only briefly unsellable. The log entry
stays until the transfer is settled, so a crash after this script leaves a record
that the sweeper completes.

KEYS:
  KEYS[1]   hash    this bucket's meta
  KEYS[2]   hash    this bucket's transfers out: transfer id ->
                    "<to>\31<units>\31<at ms>\31<budget moved>\31<values moved>"
ARGV:
  ARGV[1]   string  transfer id (unique)
  ARGV[2]   integer the receiving bucket's index
  ARGV[3]   integer the most units to give; "" for half of the capacity (rounded up)
Returns { units, budget moved (minor units), values moved ("<value>:<count>,..." or "") }:
{ 0, 0, "" } when there was nothing to give (or no such bucket; nothing written).
]]
--#include now_ms
--#include face_values

local m = redis.call('HMGET', KEYS[1], 'remaining', 'budget', 'committed', 'unit_cost',
  'values_left')
local remaining = tonumber(m[1] or '')  -- nil: unlimited stock (or no such bucket)
local budget = tonumber(m[2] or '')     -- nil: no budget
local unit_cost = tonumber(m[4] or '') or 0
local capacity = remaining
if budget and unit_cost > 0 then
  local affords = math.floor((budget - (tonumber(m[3] or '') or 0)) / unit_cost)
  capacity = capacity and math.min(capacity, affords) or affords
end
if not capacity or capacity <= 0 then
  return { 0, 0, '' }
end
local units = math.ceil(capacity / 2)
if ARGV[3] ~= '' then
  units = math.min(capacity, tonumber(ARGV[3]))
end
if units <= 0 then
  return { 0, 0, '' }
end

-- A random coupon's values, split between what stays and what moves.
local moved_values = ''
if (m[5] or '') ~= '' then
  local values, total = parse_values(m[5])
  local give, given, order = {}, 0, {}
  for i, vc in ipairs(values) do
    give[i] = math.floor(units * vc[2] / total)
    given = given + give[i]
    order[i] = { i, units * vc[2] % total }
  end
  table.sort(order, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    return a[1] < b[1]
  end)
  local k = 1
  while given < units do
    local i = order[k][1]
    if give[i] < values[i][2] then
      give[i] = give[i] + 1
      given = given + 1
    end
    k = k % #order + 1
  end
  local left, moved = {}, {}
  for i, vc in ipairs(values) do
    left[i] = { vc[1], vc[2] - give[i] }
    moved[i] = { vc[1], give[i] }
  end
  redis.call('HSET', KEYS[1], 'values_left', format_values(left))
  moved_values = format_values(moved)
end
local moved = 0
if remaining then redis.call('HINCRBY', KEYS[1], 'remaining', -units) end
if budget then
  moved = units * unit_cost
  redis.call('HINCRBY', KEYS[1], 'budget', -moved)
end
redis.call('HSET', KEYS[2], ARGV[1],
  ARGV[2] .. '\31' .. units .. '\31' .. now_ms() .. '\31' .. moved .. '\31' .. moved_values)
return { units, moved, moved_values }
