#!lua
--[[
renew_lease.lua: extend, or release, a lease only its owner holds (compare-and-set).

KEYS:
  KEYS[1]   string  the lease (value: its owner's token)
ARGV:
  ARGV[1]   string  the owner's token
  ARGV[2]   integer milliseconds to extend by; 0 releases the lease
Returns:
  1         done
  0         the lease is not this owner's (expired, or taken by another): nothing written
]]

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[2]) == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
