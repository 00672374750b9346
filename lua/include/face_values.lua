-- A random coupon's multiset of face values, as the campaign's meta keeps it
-- ("<value>:<count>,...", flashclaim/campaigns.py values_left): read and written here only.
-- parse_values(text): { {value, count}, ... } in its order, and the counts' total.
local function parse_values(text)
  local values, total = {}, 0
  for value, count in string.gmatch(text, '(%d+):(%d+)') do
    values[#values + 1] = { tonumber(value), tonumber(count) }
    total = total + tonumber(count)
  end
  return values, total
end

-- format_values(values): the text of { {value, count}, ... }.
local function format_values(values)
  local parts = {}
  for i, vc in ipairs(values) do parts[i] = string.format('%d:%d', vc[1], vc[2]) end
  return table.concat(parts, ',')
end
