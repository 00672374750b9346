#!lua
--[[
finish_grant.lua: mark a grant done, if every user in it has been decided.

Runs in the campaign's slot, like submit_grant.lua, so the two never interleave: a
submit that adds users either runs before this (and this answers "more") or after it
(and puts the grant back among the undone). The runner removes the grant's pending
entry before calling this, and puts it back on "more".

KEYS (all under the campaign's hash tag):
  KEYS[1]   hash    the grant (see submit_grant.lua)
  KEYS[2]   zset    the campaign's undone grant ids
ARGV:
  ARGV[1]   string  grant id
Returns an array {code, done, total}:
  {"done", done, total}      every user decided: state done, off the undone set
  {"more", done, total}      users are still to decide (nothing written)
  {"missing", 0, 0}          no such grant: off the undone set
]]

local m = redis.call('HMGET', KEYS[1], 'done', 'total')
if not m[2] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'missing', 0, 0}
end
local done, total = tonumber(m[1]), tonumber(m[2])
if done < total then
  return {'more', done, total}
end
redis.call('HSET', KEYS[1], 'state', 'done')
redis.call('ZREM', KEYS[2], ARGV[1])
return {'done', done, total}
