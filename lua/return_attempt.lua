#!lua
--[[
return_attempt.lua: give back an attempt take_attempt.lua counted (the code existed).

Only while the window lasts and never below zero: a counter that expired meanwhile is
not recreated (a DECR would make one with no expiry).

KEYS:
  KEYS[1]   string  the attempts counter (see take_attempt.lua)
ARGV: none
Returns:
  1         given back
  0         the window had ended, or nothing was counted (nothing written)
]]

local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count <= 0 then
  return 0
end
redis.call('DECR', KEYS[1])
return 1
