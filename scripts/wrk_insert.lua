-- wrk script: unique single-row INSERTs through POST /query.
-- Each thread gets its own prefix so rows never collide across threads or runs.
local counter = 0
local prefix = ""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("tid", tostring(math.random(1, 1e9)))
end

function init(args)
  prefix = (args[1] or "b") .. "-" .. tid .. "-" .. tostring(os.time())
end

request = function()
  counter = counter + 1
  local body = '{"query": "INSERT INTO users (name, email) VALUES (\\"bench\\", \\"' ..
      prefix .. "-" .. counter .. '@bench.local\\")"}'
  return wrk.format(nil, "/query", nil, body)
end

local failures = 0
response = function(status, headers, body)
  if status ~= 200 then failures = failures + 1 end
end
