#!lua
--[[
order_coupon.lua: one coupon's step in an order's life (flashclaim/checkout/orders.py):
lock it for the order, confirm it (used), unlock it (the order was cancelled or its hold
ran out), or refund it (the paid order was refunded). Decided here, once, against the
server clock; each change is an event (version 2: locked, confirmed, unlocked, refunded) in
the slot's coupon-event stream.

Every step is idempotent for its order: repeating it answers what it did, writes nothing.
A coupon belongs to at most one order at a time: another order is refused while it is
locked or used.

KEYS (all in one hash slot, the one the coupon id names):
  KEYS[1]   hash    coupons granted: coupon id -> "<campaign>\31<valid_until>\31<user>\31<cap>"
  KEYS[2]   hash    coupons used now: coupon id -> see include/coupon_use.lua
  KEYS[3]   stream  coupon events
  KEYS[4]   hash    events ever written, per campaign: "<campaign>\31<event>" -> count
ARGV:
  ARGV[1]   string  "lock", "confirm", "unlock" or "refund"
  ARGV[2]   string  coupon id
  ARGV[3]   string  order id
  ARGV[4]   string  user id (lock: the coupon must be this user's)
  ARGV[5]   integer the discount this coupon gives the order, minor units (lock)
  ARGV[6]   integer the hold's end, epoch ms (lock)
  ARGV[7]   integer the order's GMV, minor units (confirm)
Returns {code, order, hold_until}:
  {"locked", ...}            lock: locked for this order (now, or already)
  {"coupon_used", ...}       lock: an order used it (order: which); unlock: this order used
                             it already (a refund, not an unlock, frees it)
  {"coupon_locked", ...}     lock: another order holds it (order, and its hold's end)
  {"coupon_expired", ...}    lock: past valid_until
  {"discount_too_large", ...} lock: more than the coupon can take off (hold_until: its most)
  {"coupon_not_found", ...}  lock: no such coupon, or not this user's
  {"used", ...}              confirm: used by this order (now, or already)
  {"not_locked", ...}        confirm: this order does not hold it
  {"released", ...}          unlock: free (now, or it was not this order's lock)
  {"refunded", ...}          refund: free again, its use undone (now)
  {"not_used", ...}          refund: this order has not used it (also after a refund)
]]
--#include now_ms
--#include coupon_use

local action, coupon, order = ARGV[1], ARGV[2], ARGV[3]
local granted = redis.call('HGET', KEYS[1], coupon)
if not granted then
  return {'coupon_not_found', '', '0'}
end
local f = {}
for part in string.gmatch(granted .. '\31', '([^\31]*)\31') do f[#f + 1] = part end
local campaign, till, owner, cap = f[1], tonumber(f[2]), f[3], tonumber(f[4] or '')
local now = now_ms()
local raw = redis.call('HGET', KEYS[2], coupon)
local held_by, discount, at, state, hold = '', '0', '', '', 0
if raw then
  held_by, discount, at, state, hold = parse_use(raw)
  if state == '' then state = 'used' end  -- the write-back's redeem
end
local mine = raw and held_by == order

local function event(name, event_discount, hold_until, gmv)
  redis.call('XADD', KEYS[3], '*', 'v', '2', 'event', name, 'coupon_id', coupon,
    'campaign_id', campaign, 'user_id', owner, 'order_id', order,
    'discount', event_discount, 'at', now, 'hold_until', hold_until, 'gmv', gmv)
  redis.call('HINCRBY', KEYS[4], campaign .. '\31' .. name, 1)
end

if action == 'lock' then
  if owner ~= ARGV[4] then
    return {'coupon_not_found', '', '0'}
  end
  if raw then
    if mine and state == 'locked' then return {'locked', order, tostring(hold)} end
    if state == 'used' then return {'coupon_used', held_by, '0'} end
    return {'coupon_locked', held_by, tostring(hold)}
  end
  if now >= till then
    return {'coupon_expired', '', '0'}
  end
  if cap and tonumber(ARGV[5]) > cap then
    return {'discount_too_large', '', tostring(cap)}
  end
  redis.call('HSET', KEYS[2], coupon,
    table.concat({order, ARGV[5], now, 'locked', ARGV[6]}, '\31'))
  event('locked', ARGV[5], ARGV[6], '0')
  return {'locked', order, ARGV[6]}
end

if action == 'confirm' then
  if mine and state == 'used' then return {'used', order, '0'} end
  if not (mine and state == 'locked') then return {'not_locked', held_by, '0'} end
  redis.call('HSET', KEYS[2], coupon, table.concat({order, discount, now, 'used', '0'}, '\31'))
  event('confirmed', discount, '0', ARGV[7])
  return {'used', order, '0'}
end

if action == 'unlock' then
  if mine and state == 'used' then return {'coupon_used', order, '0'} end
  if mine and state == 'locked' then
    redis.call('HDEL', KEYS[2], coupon)
    event('unlocked', '0', '0', '0')
  end
  return {'released', order, '0'}
end

-- refund
if not (mine and state == 'used') then return {'not_used', held_by, '0'} end
redis.call('HDEL', KEYS[2], coupon)
event('refunded', discount, '0', '0')
return {'refunded', order, '0'}
