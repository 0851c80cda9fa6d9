-- wrk: GET /lookup?topic=topic_N over the 100 registered topics, in turn.
local n = 0
request = function()
  n = (n + 1) % 100
  return wrk.format("GET", "/lookup?topic=topic_" .. n)
end
