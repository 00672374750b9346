#!lua
--[[
submit_grant.lua: add users to an operator grant (creating it on first use).

A grant is idempotent per (grant id, user): a user already in the grant is not
added again (it keeps the tags of its first submission), so resubmitting a grant,
or sending its users in several calls, never queues anyone twice. claim.lua's dedup
token "g:<grant id>:<user>" then makes a retried or resumed batch replay instead of
granting twice. The start time is fixed by the first submission: a later one naming
another `at` is refused whole.

The grant joins the campaign's set of undone grants in the same step as its users,
and leaves it only in finish_grant.lua, which runs in this same slot: so submit and
finish are atomic with respect to each other, and a grant with undecided users is
always in that set (the runners' sweep re-queues any that lost its pending entry).

KEYS (all under the campaign's hash tag):
  KEYS[1]   hash    the grant: state, at, created_at, total, done, n:<outcome> counts
  KEYS[2]   list    the grant's users, in submission order: "<user>\31<,tags,>"
  KEYS[3]   hash    outcomes: user -> "" (pending) or the outcome
  KEYS[4]   hash    campaign meta (must exist)
  KEYS[5]   zset    the campaign's grant ids, scored by creation time
  KEYS[6]   zset    the campaign's undone grant ids, scored by start time (epoch ms)
ARGV:
  ARGV[1]   string  grant id
  ARGV[2]   integer when to start (epoch ms); "" for now (or, for a grant that exists,
                    its own start)
  ARGV[3..] string  users: "<user>\31<,tags,>"
Returns an array {code, added, total, state, at}:
  {"ok", added, total, state, at}       the users not yet in the grant were added; at is
                                        the grant's start (epoch ms)
  {"at_fixed", 0, total, state, at}     the grant exists with another start (nothing written)
  {"campaign_not_found", 0, 0, "", ""}  (nothing written)
]]
--#include campaign_missing
--#include now_ms

if campaign_missing(KEYS[4]) then
  return {'campaign_not_found', 0, 0, '', ''}
end
local now = now_ms()
local existing = redis.call('HMGET', KEYS[1], 'at', 'total', 'state')
if existing[1] and ARGV[2] ~= '' and ARGV[2] ~= existing[1] then
  return {'at_fixed', 0, tonumber(existing[2]), existing[3], existing[1]}
end
local added = 0
for i = 3, #ARGV do
  local user = string.match(ARGV[i], '^([^\31]*)')
  if redis.call('HSETNX', KEYS[3], user, '') == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    added = added + 1
  end
end
local at = existing[1]
if not at then
  at = ARGV[2] ~= '' and ARGV[2] or tostring(now)
  redis.call('HSET', KEYS[1], 'state', 'pending', 'at', at, 'created_at', now,
    'total', added, 'done', 0)
  redis.call('ZADD', KEYS[5], 'NX', now, ARGV[1])
  redis.call('ZADD', KEYS[6], at, ARGV[1])
elseif added > 0 then
  redis.call('HINCRBY', KEYS[1], 'total', added)
  redis.call('HSET', KEYS[1], 'state', 'pending')
  redis.call('ZADD', KEYS[6], at, ARGV[1])
end
local m = redis.call('HMGET', KEYS[1], 'total', 'state')
return {'ok', added, tonumber(m[1]), m[2], at}
