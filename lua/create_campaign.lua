#!lua
--[[
create_campaign.lua: create a campaign's meta hash unless the id is taken.

An id is taken while its campaign exists, and for good once retention removed it
(its records live on in the ledger, keyed by campaign and seq: a new campaign under
the same id would give seqs the ledger already holds).

KEYS:
  KEYS[1]   hash    campaign meta
  KEYS[2]   string  the campaign's retirement mark (written by retention)
ARGV:
  ARGV[1..] string  field, value, field, value, ... (flashclaim/campaigns.py
                    builds them: id, stock, remaining, granted, paused, windows,
                    limits, eligibility, coupon templates, the public definition)
Returns:
  1         created
  0         a campaign with this id exists (nothing written)
  -1        a campaign with this id existed and was retired (nothing written)
]]

if redis.call('EXISTS', KEYS[2]) == 1 then
  return -1
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
