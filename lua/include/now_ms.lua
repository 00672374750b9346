-- now_ms(): the server's clock in epoch milliseconds, the one clock every decision uses
-- (scripts replicate their effects, so reading TIME is allowed and safe).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
