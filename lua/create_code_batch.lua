#!lua
--[[
create_code_batch.lua: register a batch of redemption codes to generate, within the
campaign's cap.

KEYS (under the campaign's hash tag):
  KEYS[1]   hash    campaign meta (must exist)
  KEYS[2]   string  codes ever issued for the campaign
  KEYS[3]   hash    the batch: count, uses, per_user, generated, nonce, state, created_at
  KEYS[4]   zset    the campaign's batch ids, scored by creation time
ARGV:
  ARGV[1]   string  batch id
  ARGV[2]   integer codes in the batch
  ARGV[3]   integer uses per code
  ARGV[4]   string  the batch nonce (hex; the codes are derived from it)
  ARGV[5]   integer the most codes one campaign may have
  ARGV[6]   integer uses of one code per user
Returns an array {code, issued}:
  {"ok", issued}                    registered; issued now counts this batch
  {"campaign_not_found", 0}         (nothing written)
  {"bucketed", 0}                   the campaign's stock is spread over buckets: a code
                                    and a user's counts would live in different slots
  {"too_many_codes", issued}        the cap would be passed (nothing written)
]]
--#include campaign_missing
--#include now_ms

if campaign_missing(KEYS[1]) then
  return {'campaign_not_found', 0}
end
if tonumber(redis.call('HGET', KEYS[1], 'buckets') or '1') > 1 then
  return {'bucketed', 0}
end
local issued = tonumber(redis.call('GET', KEYS[2]) or '0')
local count = tonumber(ARGV[2])
if issued + count > tonumber(ARGV[5]) then
  return {'too_many_codes', issued}
end
local now = now_ms()
issued = redis.call('INCRBY', KEYS[2], count)
redis.call('HSET', KEYS[3], 'count', count, 'uses', ARGV[3], 'per_user', ARGV[6], 'generated', 0,
  'nonce', ARGV[4], 'state', 'generating', 'created_at', now)
redis.call('ZADD', KEYS[4], now, ARGV[1])
return {'ok', issued}
