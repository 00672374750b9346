#!lua
--[[
record_grant_outcomes.lua: record the outcomes of one processed batch of a grant
and move its cursor forward, once.

The batch was decided by claim.lua first; a crash before this script runs leaves
the cursor where it was, and the batch is decided again (grants replay). Counts
move only for users still pending, so a batch recorded twice counts once.

KEYS:
  KEYS[1]   hash    the grant (see submit_grant.lua)
  KEYS[2]   hash    outcomes: user -> "" (pending) or the outcome
ARGV:
  ARGV[1]   integer the cursor the batch started at
  ARGV[2]   integer the cursor after the batch
  ARGV[3..] string  user, outcome, user, outcome, ... (outcome: "granted:<claim id>"
                    or a rejection code)
Returns an array {code, done, total}:
  {"ok", done, total}             recorded
  {"moved", done, total}          another runner recorded this batch (nothing written)
]]

local m = redis.call('HMGET', KEYS[1], 'done', 'total')
local done, total = tonumber(m[1]), tonumber(m[2])
if done ~= tonumber(ARGV[1]) then
  return {'moved', done, total}
end
for i = 3, #ARGV, 2 do
  local user, outcome = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[2], user) == '' then
    local code = string.match(outcome, '^([a-z_]+)')
    redis.call('HINCRBY', KEYS[1], 'n:' .. code, 1)
    redis.call('HSET', KEYS[2], user, outcome)
  end
end
done = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'done', done)
if done >= total then
  redis.call('HSET', KEYS[1], 'state', 'done')
end
return {'ok', done, total}
