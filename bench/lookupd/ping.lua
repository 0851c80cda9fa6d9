-- wrk: GET /ping built per request by the same Lua hook as lookup.lua, so both runs pay the
-- same client-side cost and the ratio is the server's.
request = function()
  return wrk.format("GET", "/ping")
end
