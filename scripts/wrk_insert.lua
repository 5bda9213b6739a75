-- wrk script: unique single-row INSERTs through POST /query.
-- Usage: wrk ... -s scripts/wrk_insert.lua URL -- PREFIX TABLE
-- Each thread gets its own prefix so rows never collide across threads or runs.
local counter = 0
local prefix = ""
local tbl = "users"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("tid", tostring(math.random(1, 1e9)))
end

function init(args)
  prefix = (args[1] or "b") .. "-" .. tid .. "-" .. tostring(os.time())
  tbl = args[2] or "users"
end

request = function()
  counter = counter + 1
  local body = '{"query": "INSERT INTO ' .. tbl .. ' (name, email) VALUES (\\"bench\\", \\"' ..
      prefix .. "-" .. counter .. '@bench.local\\")"}'
  return wrk.format(nil, "/query", nil, body)
end
