#!lua
--[[
use_coupon.lua: the checkout system says a coupon was used by an order (redeem), or
that the order was cancelled (release). Decided here, once, against the server clock,
and recorded as an event in the slot's coupon-event stream for the ledger.

One coupon is used by one order: the first redeem wins; the same order again is a
replay (the stored answer); any other order is refused until a release. A coupon an
order holds through the orders API (lua/order_coupon.lua) is refused here both ways:
both answer order_managed (only that order's confirm, cancel or refund may change it, so
one coupon never pays for two orders).

KEYS (all in one hash slot, the one the coupon id names):
  KEYS[1]   hash    coupons granted: coupon id ->
                    "<campaign>\31<valid_until ms>\31<user>\31<most off, minor units>"
                    (coupons granted before the last part existed have no bound)
  KEYS[2]   hash    coupons used now: coupon id -> see include/coupon_use.lua
  KEYS[3]   stream  coupon events (fields: v, event, coupon_id, campaign_id, user_id,
                    order_id, discount, at)
  KEYS[4]   hash    events ever written, per campaign: "<campaign>\31redeemed" and
                    "<campaign>\31released" -> count (what reconcile holds the ledger to)
ARGV:
  ARGV[1]   string  "redeem" or "release"
  ARGV[2]   string  coupon id
  ARGV[3]   string  order id
  ARGV[4]   integer the discount given, minor units (redeem; "0" for release)
Returns an array {code, campaign, user, valid_until, order, discount, at}:
  {"used", ...}              redeemed now (event written)
  {"replay", ...}            this order had redeemed it already (nothing written)
  {"coupon_used", ...}       another order holds it (nothing written); order is that order
  {"coupon_expired", ...}    past valid_until (nothing written)
  {"discount_too_large", ...} the discount is more than the coupon can take off (nothing
                             written); discount is the coupon's most
  {"released", ...}          back to unused (event written); also when it was not in use
  {"order_mismatch", ...}    release by an order that does not hold it (nothing written)
  {"order_managed", ...}     redeem or release of a coupon an order holds through the
                             orders API (nothing written)
  {"coupon_not_found"}       no such coupon (nothing written)
]]
--#include now_ms
--#include coupon_use

local granted = redis.call('HGET', KEYS[1], ARGV[2])
if not granted then
  return {'coupon_not_found'}
end
local f = {}
for part in string.gmatch(granted .. '\31', '([^\31]*)\31') do f[#f + 1] = part end
local campaign, till, user, cap = f[1], f[2], f[3], tonumber(f[4] or '')
local now = now_ms()
local used = redis.call('HGET', KEYS[2], ARGV[2])
local order, discount, at, state = '', '', '', ''
if used then
  order, discount, at, state = parse_use(used)
end

local function event(name, event_order, event_discount)
  redis.call('XADD', KEYS[3], '*', 'v', '1', 'event', name, 'coupon_id', ARGV[2],
    'campaign_id', campaign, 'user_id', user, 'order_id', event_order,
    'discount', event_discount, 'at', now)
  redis.call('HINCRBY', KEYS[4], campaign .. '\31' .. name, 1)
end

if ARGV[1] == 'redeem' then
  if used and state ~= '' then
    return {'order_managed', campaign, user, till, order, discount, at}
  end
  if used then
    local code = order == ARGV[3] and 'replay' or 'coupon_used'
    return {code, campaign, user, till, order, discount, at}
  end
  if now >= tonumber(till) then
    return {'coupon_expired', campaign, user, till, '', '', ''}
  end
  if cap and tonumber(ARGV[4]) > cap then
    return {'discount_too_large', campaign, user, till, '', tostring(cap), ''}
  end
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. '\31' .. ARGV[4] .. '\31' .. now)
  event('redeemed', ARGV[3], ARGV[4])
  return {'used', campaign, user, till, ARGV[3], ARGV[4], tostring(now)}
end

-- release
if not used then
  return {'released', campaign, user, till, '', '', ''}
end
if order ~= ARGV[3] then
  return {'order_mismatch', campaign, user, till, order, discount, at}
end
if state ~= '' then
  return {'order_managed', campaign, user, till, order, discount, at}
end
redis.call('HDEL', KEYS[2], ARGV[2])
event('released', ARGV[3], '0')
return {'released', campaign, user, till, '', '', ''}
