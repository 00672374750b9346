#!lua
--[[
store_codes.lua: store the keyed hashes of the next codes of a batch, once.

The batch's cursor moves only here, with the hashes, so a generator that dies
mid-batch resumes where the last call left off; HSETNX never resets a code's uses.

KEYS:
  KEYS[1]   hash    the batch (see create_code_batch.lua)
  KEYS[2]   hash    the codes of the campaign's hash slot: code hash ->
                    "<campaign>:<uses left>:<uses per user>"
ARGV:
  ARGV[1]   integer the cursor these codes start at
  ARGV[2]   string  "<campaign id>:<uses>:<uses per user>", every code's value at first
  ARGV[3..] string  code hashes, in index order
Returns an array {code, generated}:
  {"ok", generated}       stored
  {"moved", generated}    another generator stored these (nothing written)
]]

local generated = tonumber(redis.call('HGET', KEYS[1], 'generated'))
if generated ~= tonumber(ARGV[1]) then
  return {'moved', generated}
end
for i = 3, #ARGV do
  redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[2])
end
generated = generated + #ARGV - 2
redis.call('HSET', KEYS[1], 'generated', generated)
if generated >= tonumber(redis.call('HGET', KEYS[1], 'count')) then
  redis.call('HSET', KEYS[1], 'state', 'ready')
end
return {'ok', generated}
