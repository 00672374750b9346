#!lua
--[[
advance_schedule.lua: record a schedule's run, once (compare-and-set on its last run).

Every service may run a due occurrence (its grant id makes a second submission the same
grant); only the first to record it moves the schedule on and counts the run.

KEYS:
  KEYS[1]   hash    schedule id -> "<last run ms>:<runs>"
ARGV:
  ARGV[1]   string  schedule id
  ARGV[2]   integer the last run the caller read (ms)
  ARGV[3]   integer the run just done (ms)
Returns:
  1         recorded
  0         another service recorded it (or a later one) first: nothing written
]]

local id = ARGV[1]
local current = redis.call('HGET', KEYS[1], id)
local last, runs = string.match(current or '', '^(%d+):(%d+)$')
if last ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], id, ARGV[3] .. ':' .. (tonumber(runs) + 1))
return 1
