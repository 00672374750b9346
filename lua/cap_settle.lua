#!lua
--[[
cap_settle.lua: settle a reservation of cap_reserve.lua once claim.lua decided its claim:
a grant moves from pending into held (its coupons) and daily; a refusal only gives the
reservation back. Idempotent: the service settles right after the decision, and the
ledger consumer settles every grant of a capped campaign again from the stream (so a
service that died in between is made good); a grant already in daily is settled.

KEYS:
  KEYS[1]   zset    held
  KEYS[2]   zset    pending
  KEYS[3]   zset    daily
ARGV:
  ARGV[1]   string  the reservation, "<claim id>\31<coupons>" ("" from the ledger: none known)
  ARGV[2]   string  the claim id when granted, "" when refused
  ARGV[3]   integer when it was granted (epoch ms)
  ARGV[4..] coupon id, valid_until (epoch ms), ... of the grant
Returns 1 when a grant was settled now, 0 otherwise.
]]
--#include now_ms

local held_key, pending_key, daily_key = KEYS[1], KEYS[2], KEYS[3]
if ARGV[1] ~= '' then redis.call('ZREM', pending_key, ARGV[1]) end
local claim_id = ARGV[2]
if claim_id == '' or redis.call('ZSCORE', daily_key, claim_id) then
  return 0
end
local now = now_ms()
local granted_at = tonumber(ARGV[3])
if granted_at > now - 2 * 86400000 then
  redis.call('ZADD', daily_key, granted_at, claim_id)
  redis.call('PEXPIREAT', daily_key, granted_at + 2 * 86400000, 'GT')
  redis.call('PEXPIREAT', daily_key, granted_at + 2 * 86400000, 'NX')
end
for i = 4, #ARGV, 2 do
  local until_ms = tonumber(ARGV[i + 1])
  if until_ms > now then
    redis.call('ZADD', held_key, until_ms, ARGV[i])
    redis.call('PEXPIREAT', held_key, until_ms, 'GT')
    redis.call('PEXPIREAT', held_key, until_ms, 'NX')
  end
end
return 1
