-- wrk script for `flashclaim bench`: POST a claim as a different user each time.
-- (A wrk script, not a Redis script: it lives apart from the top-level lua/ folder.)
-- wrk arguments after "--": <prefix> [<pool>]
--   no pool: users <prefix>-<thread>-<n>, all distinct;
--   a pool:  users <prefix>-1 .. <prefix>-<pool>, round and round (repeat taps).
wrk.method = "POST"

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "user"
  pool = tonumber(args[2] or "0")
  counter = 0
end

function request()
  counter = counter + 1
  local user
  if pool > 0 then
    user = prefix .. "-" .. ((counter * 2 + tid) % pool + 1)
  else
    user = prefix .. "-" .. tid .. "-" .. counter
  end
  return wrk.format(nil, nil, {["X-User-Id"] = user})
end
