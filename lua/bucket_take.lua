#!lua
--[[
bucket_take.lua: the second half of a transfer (see bucket_give.lua): add the given
units to this bucket (stock, when its stock is limited, and budget), once per transfer
id. The id is kept for the campaign's life, so a late or repeated take (the giver's
retry, the sweeper) adds nothing.

KEYS:
  KEYS[1]   hash    this bucket's meta
  KEYS[2]   hash    this bucket's transfers in: transfer id -> units
ARGV:
  ARGV[1]   string  transfer id
  ARGV[2]   integer units (stock)
  ARGV[3]   integer budget moved with them (minor units; 0 without a budget)
  ARGV[4]   string  a random coupon's values moved with them ("<value>:<count>,..."; "")
Returns:
  1         added now
  0         this transfer was added before (nothing written)
  -1        no such bucket yet (nothing written; the sweeper creates it, then retries)
]]
--#include campaign_missing
--#include face_values

if campaign_missing(KEYS[1]) then
  return -1
end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then
  return 0
end
if redis.call('HGET', KEYS[1], 'remaining') ~= '' then
  redis.call('HINCRBY', KEYS[1], 'remaining', tonumber(ARGV[2]))
end
if tonumber(ARGV[3]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'budget', tonumber(ARGV[3]))
end
if (ARGV[4] or '') ~= '' then  -- merge the values into this bucket's multiset
  local merged, at = parse_values(redis.call('HGET', KEYS[1], 'values_left') or ''), {}
  for i, vc in ipairs(merged) do at[vc[1]] = i end
  for _, vc in ipairs((parse_values(ARGV[4]))) do
    if at[vc[1]] then
      merged[at[vc[1]]][2] = merged[at[vc[1]]][2] + vc[2]
    else
      merged[#merged + 1] = vc
      at[vc[1]] = #merged
    end
  end
  redis.call('HSET', KEYS[1], 'values_left', format_values(merged))
end
return 1
