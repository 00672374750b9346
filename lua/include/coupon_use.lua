-- parse_use(raw): a coupon's entry in its slot's "coupons used now" hash, as
-- order, discount, at, state, hold_until. Two layouts:
--   "<order>\31<discount>\31<at>"                              the write-back's redeem
--   "<order>\31<discount>\31<at>\31<state>\31<hold_until>"     an order's (state: locked
--                                                              or used; lua/order_coupon.lua)
-- state is "" for the write-back's layout (which only ever says used).
local function parse_use(raw)
  local f = {}
  for part in string.gmatch(raw .. '\31', '([^\31]*)\31') do f[#f + 1] = part end
  return f[1], f[2], f[3], f[4] or '', tonumber(f[5] or '0')
end
