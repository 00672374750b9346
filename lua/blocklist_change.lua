#!lua
--[[
blocklist_change.lua: block or unblock a user, and log the change for the service
processes that keep a copy of the list (they read the log from their revision on,
not the whole list).

The revision counter and the log move together: revision r's change is the log entry
with id "<r>-0". The log keeps the last LOG_KEPT changes; a process further behind
reads the whole list again.

KEYS (all under the {blocklist} hash tag):
  KEYS[1]   hash    the blocklist: user id -> {"reason", "blocked_at"} JSON
  KEYS[2]   string  the revision counter
  KEYS[3]   stream  the change log: id "<revision>-0", fields op ("block" or "unblock"), user
  KEYS[4]   zset    every blocked user, all scored 0 (the listing's order, by id)
ARGV:
  ARGV[1]   string  "block" or "unblock"
  ARGV[2]   string  user id
  ARGV[3]   string  the entry's JSON (block), "" (unblock)
  ARGV[4]   integer LOG_KEPT: changes kept in the log
Returns an array {changed, revision}:
  {1, revision}   the list changed (block: added or its entry replaced; unblock: removed)
  {0, revision}   an unblock of a user who is not blocked (nothing written)
]]

local op, user = ARGV[1], ARGV[2]
if op == 'block' then
  redis.call('HSET', KEYS[1], user, ARGV[3])
  redis.call('ZADD', KEYS[4], 0, user)
else
  if redis.call('HDEL', KEYS[1], user) == 0 then
    return {0, tonumber(redis.call('GET', KEYS[2]) or '0')}
  end
  redis.call('ZREM', KEYS[4], user)
end
local rev = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], rev .. '-0', 'op', op, 'user', user)
local oldest = rev - tonumber(ARGV[4])
if oldest > 0 then
  redis.call('XTRIM', KEYS[3], 'MINID', oldest .. '-0')
end
return {1, rev}
