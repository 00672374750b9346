#!lua
--[[
order_state.lua: an order's record (flashclaim/checkout/orders.py), and every change of its
state, decided here once against the server clock. The record is what makes the order's
coupon steps (lua/order_coupon.lua, one per coupon, each in its coupon's slot) safe to
repeat and to finish after a crash: whoever changes the state here owns the steps that
follow; a confirm and a cancel racing are decided by which arrives here first.

States: locking -> locked -> confirmed -> refunded, and locking | locked -> cancelled
(by the client, by a lock that failed, or by the hold running out: reason "expired").
"applied" is 1 once the coupon steps of the current state are all done.

KEYS:
  KEYS[1]  hash  the order: state, user, fingerprint, plan, gmv, discount, channel,
                 hold_until, created_at, updated_at, reason, applied
ARGV[1] the action, then its arguments:
  "begin" fingerprint user plan gmv discount channel hold_ms retention_ms
          a new order (state locking, hold_until = now + hold_ms), or the one there
  "locked"    locking -> locked (every coupon locked)
  "drop"      locking -> gone (a coupon refused: the order never was)
  "confirm"   locked -> confirmed, before hold_until; after it: -> cancelled (expired)
  "cancel"    locking | locked -> cancelled
  "expire"    locking | locked -> cancelled (expired), once now >= hold_until
  "refund"    confirmed -> refunded
  "applied"   every coupon step of the state is done
Returns {code, state, applied, plan, gmv, discount, hold_until, user, reason, channel}:
  {"new", ...}       begin: the order is made (state locking)
  {"existing", ...}  begin: the same request made it before (a replay, or a resume)
  {"conflict", ...}  begin: another request under this order id
  {"ok", ...}        the state changed now (drop: every field empty)
  {"replay", ...}    already in the state asked for
  {"missing", ...}   no such order
  {"expired", ...}   confirm after the hold's end: cancelled (reason expired) instead
  {"refused", ...}   the state does not allow it (state says which it is in)
  {"not_due", ...}   expire before the hold's end
]]
--#include now_ms

local order = KEYS[1]
local action = ARGV[1]
local now = now_ms()

local function answer(code)
  local r = redis.call('HMGET', order, 'state', 'applied', 'plan', 'gmv', 'discount',
    'hold_until', 'user', 'reason', 'channel')
  for i = 1, #r do r[i] = r[i] or '' end
  return {code, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]}
end

local function move(state, reason)
  redis.call('HSET', order, 'state', state, 'applied', '0', 'updated_at', now,
    'reason', reason or '')
  return answer('ok')
end

local state = redis.call('HGET', order, 'state')

if action == 'begin' then
  if state then
    if redis.call('HGET', order, 'fingerprint') ~= ARGV[2] then return answer('conflict') end
    return answer('existing')
  end
  redis.call('HSET', order, 'state', 'locking', 'fingerprint', ARGV[2], 'user', ARGV[3],
    'plan', ARGV[4], 'gmv', ARGV[5], 'discount', ARGV[6], 'channel', ARGV[7],
    'hold_until', now + tonumber(ARGV[8]), 'created_at', now, 'updated_at', now,
    'reason', '', 'applied', '0')
  redis.call('PEXPIRE', order, ARGV[9])
  return answer('new')
end

if not state then return answer('missing') end
local hold_until = tonumber(redis.call('HGET', order, 'hold_until'))

if action == 'locked' then
  if state == 'locked' then return answer('replay') end
  if state ~= 'locking' then return answer('refused') end
  return move('locked')
end
if action == 'drop' then
  if state ~= 'locking' then return answer('refused') end
  redis.call('DEL', order)
  return {'ok', '', '', '', '', '', '', '', '', ''}
end
if action == 'confirm' then
  if state == 'confirmed' then return answer('replay') end
  if state ~= 'locked' then return answer('refused') end
  if now >= hold_until then
    move('cancelled', 'expired')
    return answer('expired')
  end
  return move('confirmed')
end
if action == 'cancel' or action == 'expire' then
  if state == 'cancelled' then return answer('replay') end
  if state ~= 'locking' and state ~= 'locked' then return answer('refused') end
  if action == 'expire' then
    if now < hold_until then return answer('not_due') end
    return move('cancelled', 'expired')
  end
  return move('cancelled', 'cancelled')
end
if action == 'refund' then
  if state == 'refunded' then return answer('replay') end
  if state ~= 'confirmed' then return answer('refused') end
  return move('refunded')
end
if action == 'applied' then
  redis.call('HSET', order, 'applied', '1')
  return answer('ok')
end
return redis.error_reply('unknown action ' .. tostring(action))
