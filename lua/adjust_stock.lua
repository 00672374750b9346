#!lua
--[[
adjust_stock.lua: add (delta > 0) or withdraw (delta < 0) stock; remaining never
goes below zero and total stock never above the campaign maximum. The invariant
stock == granted + remaining holds before and after.

KEYS:
  KEYS[1]   hash    campaign meta
ARGV:
  ARGV[1]   integer delta, non-zero
  ARGV[2]   integer the largest total stock allowed
Returns an array {code, stock, remaining}:
  {"ok", stock, remaining}                  applied
  {"campaign_not_found", 0, 0}              no such campaign (nothing written)
  {"insufficient_stock", stock, remaining}  withdrawal larger than remaining (nothing written)
  {"stock_limit", stock, remaining}         total would exceed ARGV[2] (nothing written)
  {"unlimited_stock", 0, 0}                 the campaign's stock is unlimited (nothing written)
  {"stock_fixed", stock, remaining}         the stock is a random coupon's multiset of face
                                            values, fixed at creation (nothing written)
]]

local delta = tonumber(ARGV[1])
local max_stock = tonumber(ARGV[2])
local m = redis.call('HMGET', KEYS[1], 'stock', 'remaining', 'values_left')
if not m[1] then
  return {'campaign_not_found', 0, 0}
end
if m[1] == '' then
  return {'unlimited_stock', 0, 0}
end
local stock, remaining = tonumber(m[1]), tonumber(m[2])
if (m[3] or '') ~= '' then
  return {'stock_fixed', stock, remaining}
end
if remaining + delta < 0 then
  return {'insufficient_stock', stock, remaining}
end
if stock + delta > max_stock then
  return {'stock_limit', stock, remaining}
end
stock = redis.call('HINCRBY', KEYS[1], 'stock', delta)
remaining = redis.call('HINCRBY', KEYS[1], 'remaining', delta)
return {'ok', stock, remaining}
