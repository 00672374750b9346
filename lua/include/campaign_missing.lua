-- campaign_missing(meta): no campaign (or bucket) has this meta hash, so the script must
-- write nothing and say so in its own reply.
local function campaign_missing(meta)
  return redis.call('EXISTS', meta) == 0
end
