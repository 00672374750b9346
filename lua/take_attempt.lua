#!lua
--[[
take_attempt.lua: take one attempt from a fixed-window allowance, if one is left.

The failed-code limiter counts an attempt before the code is looked up (so a thousand
wrong codes sent at once get exactly `limit` lookups), and gives it back with
return_attempt.lua when the code turns out to exist: what stays counted are failures.

KEYS:
  KEYS[1]   string  the counter of one user's attempts in the current window (PX)
ARGV:
  ARGV[1]   integer the allowance of the window
  ARGV[2]   integer the window, milliseconds (from the first attempt)
Returns an array {taken, detail}:
  {1, count}      taken; count is the attempts now counted
  {0, ms}         none left; ms until the window ends (at least 1)
]]

local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  return {0, math.max(redis.call('PTTL', KEYS[1]), 1)}
end
count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {1, count}
