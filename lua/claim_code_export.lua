#!lua
--[[
claim_code_export.lua: hand the codes of every ready batch to one export, once.

A batch's codes are derived from its nonce; this takes the nonce out of the batch in
the same step as it hands it over, so two exports racing get each batch once between
them: the codes exist outside the service in one download only. (An export that
breaks off after this cannot be repeated: the nonce is gone.)

KEYS (under the campaign's hash tag):
  KEYS[1..n]  hash  code batches (see create_code_batch.lua)
ARGV: none
Returns an array of n strings: batch i's nonce (hex) when it was ready and not yet
exported (now it is), else "".
]]
--#include now_ms

local now = now_ms()
local out = {}
for i = 1, #KEYS do
  local b = redis.call('HMGET', KEYS[i], 'state', 'nonce')
  if b[1] == 'ready' and b[2] then
    redis.call('HDEL', KEYS[i], 'nonce')
    redis.call('HSET', KEYS[i], 'exported_at', now)
    out[i] = b[2]
  else
    out[i] = ''
  end
end
return out
