#!lua
--[[
top_up_budget.lua: raise a campaign's budget (a top-up), atomically with the claims.

KEYS:
  KEYS[1]   hash    campaign meta
ARGV:
  ARGV[1]   integer minor units to add (> 0)
Returns { code, budget }:
  "ok", budget            the new budget
  "campaign_not_found", ""
  "no_budget", ""         the campaign has no budget to raise
]]

local budget = redis.call('HGET', KEYS[1], 'budget')
if not budget then
  return { 'campaign_not_found', '' }
end
if budget == '' then
  return { 'no_budget', '' }
end
return { 'ok', tostring(redis.call('HINCRBY', KEYS[1], 'budget', ARGV[1])) }
