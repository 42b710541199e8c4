-- Closed-model load with wrk (one thread): the requests of a spec directory, sent in turn, each with
-- a fresh delivery id; at the end, one JSON line with the status counts and latency percentiles.
--
--   wrk -t1 -cN -dS -s bench/load/wrk.lua URL -- SPEC_DIR
--
-- SPEC_DIR holds, for i = 0, 1, …: `i.path` (request target), `i.headers` ("name: value" lines),
-- `i.body`; and optionally `delivery-id-header` (the header that gets a fresh id per request).
-- With WRK_THINK_MS set, each connection waits a random time with that mean (exponentially
-- distributed) between an answer and its next request: with N connections, about
-- N × 1000 / WRK_THINK_MS requests per second, arriving independently of one another, for the
-- latency at a set rate. (An environment variable, because wrk decides whether to call delay()
-- from the script's top level, before init() sees the arguments.)

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end

local requests = {}
local id_header = nil
local counter = 0
local think_ms = tonumber(os.getenv("WRK_THINK_MS") or "")
statuses = {}

function init(args)
  local dir = args[1]
  local i = 0
  while true do
    local path = read(dir .. "/" .. i .. ".path")
    if not path then break end
    local headers = {}
    for line in (read(dir .. "/" .. i .. ".headers") or ""):gmatch("[^\n]+") do
      local name, value = line:match("^([^:]+):%s*(.*)$")
      if name then headers[name] = value end
    end
    requests[#requests + 1] = { path = path, headers = headers, body = read(dir .. "/" .. i .. ".body") or "" }
    i = i + 1
  end
  local h = read(dir .. "/delivery-id-header")
  if h and #h > 0 then id_header = h end
  -- Ids unique across runs: a per-process random prefix and a counter.
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  prefix = string.format("%08x-%04x", math.random(0, 0x7fffffff), math.random(0, 0xffff))
end

function request()
  counter = counter + 1
  local r = requests[(counter % #requests) + 1]
  if id_header then r.headers[id_header] = prefix .. "-" .. counter end
  return wrk.format("POST", r.path, r.headers, r.body)
end

-- wrk takes whole milliseconds: draws are rounded, which keeps the mean.
if think_ms then
  function delay()
    return math.floor(-math.log(1 - math.random()) * think_ms + 0.5)
  end
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  -- One thread: its Lua state holds the status counts.
  local parts = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do parts[#parts + 1] = string.format('"%d":%d', code, n) end
  end
  local e = summary.errors
  io.write(string.format(
    '{"answered":%d,"durationUs":%d,"statuses":{%s},"socketErrors":%d,"timeouts":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d}\n',
    summary.requests, summary.duration, table.concat(parts, ","),
    e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end

threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end
