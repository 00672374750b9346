#!lua
--[[
start_draw.lua: begin (or resume) a drawn campaign's draw, by the Redis clock.

From the moment draw_state is "drawing", claim.lua refuses every entry: the entries the
drawer then reads are all there will ever be. A draw that was begun and not finished
(a restart) is begun again: the winners are the same (the seed and the entries do not
change) and their grants are idempotent (dedup token "d:<user>").

KEYS:
  KEYS[1]   hash    campaign meta
ARGV: none
Returns { state, detail }:
  "missing", ""          no such campaign, or not a drawn one
  "wait",    ms          draw_at is still ms away
  "done",    ""          drawn already
  "drawing", ""          the entries are frozen; draw now
]]
--#include now_ms

local m = redis.call('HMGET', KEYS[1], 'admission', 'draw_at', 'draw_state')
if m[1] ~= 'draw' then
  return { 'missing', '' }
end
if m[3] == 'done' then
  return { 'done', '' }
end
local now = now_ms()
local draw_at = tonumber(m[2])
if now < draw_at then
  return { 'wait', tostring(draw_at - now) }
end
redis.call('HSET', KEYS[1], 'draw_state', 'drawing')
return { 'drawing', '' }
