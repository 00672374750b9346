#!lua
--[[
add_template_version.lua: store a new version of a coupon template.

Versions never change once written: a campaign copies the version it names, so a
template in use stays as it was; an operator who needs another coupon adds a version.

KEYS:
  KEYS[1]   hash    the template: "latest" -> n, "1".."n" -> version JSON
  KEYS[2]   zset    every template id, all scored 0 (so ordered by id)
ARGV:
  ARGV[1]   string  the template id
  ARGV[2]   string  the version's JSON (without its number)
  ARGV[3]   integer the largest number of versions one template may have
Returns:
  n         the new version's number
  0         the template already has ARGV[3] versions (nothing written)
]]

local latest = tonumber(redis.call('HGET', KEYS[1], 'latest') or '0')
if latest >= tonumber(ARGV[3]) then
  return 0
end
latest = redis.call('HINCRBY', KEYS[1], 'latest', 1)
redis.call('HSET', KEYS[1], tostring(latest), ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', 0, ARGV[1])
return latest
