-- local_day(tz_rules, now): the day number in a time zone at `now` (epoch ms), and the
-- milliseconds to its next local midnight. tz_rules: "<offset ms>" or
-- "<offset>;<from ms>:<offset>;..." (UTC offsets and the instants they start at,
-- ascending; flashclaim/zones.py computes them from the IANA zone).
local function local_day(tz_rules, now)
  local offset = 0
  for part in string.gmatch(tz_rules, '[^;]+') do
    local from, off = string.match(part, '^(-?%d+):(-?%d+)$')
    if not from then
      offset = tonumber(part)
    elseif now >= tonumber(from) then
      offset = tonumber(off)
    end
  end
  local local_ms = now + offset
  local day = math.floor(local_ms / 86400000)
  return day, (day + 1) * 86400000 - local_ms
end
