-- wrk script for `flashclaim bench`: POST a claim as a different user each time.
-- (A wrk script, not a Redis script: it lives apart from the top-level lua/ folder.)
-- wrk arguments after "--": <prefix> <pool> <shape> <key every> <tokens file> <threads>
--   pool 0: users <prefix>-<thread>-<n>, all distinct;
--   a pool:  users <prefix>-1 .. <prefix>-<pool>, round and round (repeat taps);
--   shape "app": the request a grab button sends, Content-Type application/json and
--     {"channel": "app"}; "bare": no body;
--   key every k > 0: every k-th request carries an Idempotency-Key (distinct);
--   tokens file: one bearer JWT a line, used in turn instead of X-User-Id (threads: wrk's
--     -t, so that the threads take interleaved tokens: a thread's state cannot count them).
wrk.method = "POST"

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "user"
  pool = tonumber(args[2] or "0")
  shape = args[3] or "bare"
  key_every = tonumber(args[4] or "0")
  tokens = {}
  if args[5] and args[5] ~= "" then
    for line in io.lines(args[5]) do
      tokens[#tokens + 1] = line
    end
  end
  nthreads = tonumber(args[6] or "1")
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
  local headers = {}
  if #tokens > 0 then
    -- threads take interleaved tokens, so no two threads send the same user
    local i = ((counter - 1) * nthreads + tid - 1) % #tokens + 1
    headers["Authorization"] = "Bearer " .. tokens[i]
  else
    headers["X-User-Id"] = user
  end
  if key_every > 0 and counter % key_every == 0 then
    headers["Idempotency-Key"] = user .. "-k" .. counter
  end
  if shape == "app" then
    headers["Content-Type"] = "application/json"
    return wrk.format(nil, nil, headers, '{"channel": "app"}')
  end
  return wrk.format(nil, nil, headers)
end
