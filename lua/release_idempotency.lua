#!lua
--[[
release_idempotency.lua: undo an Idempotency-Key binding that produced no claim.

A claim with an Idempotency-Key first binds the key to its campaign and body
(SET NX). When claim.lua then refuses the claim (missing campaign, a limit, sold
out...), nothing was granted under the key, so the binding goes (Stripe's rule:
only a request that did something keeps its key). Deleted only if it still holds
this request's fingerprint: a binding another request made stays.

KEYS:
  KEYS[1]  string  the binding (keys.KeySpace.idempotency)
ARGV:
  ARGV[1]  string  the fingerprint this request bound ("<campaign id>\n<channel>")
Returns:
  1  the binding was deleted
  0  it was gone already, or holds another fingerprint
]]

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
