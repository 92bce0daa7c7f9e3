-- wrk script: save+get tool calls over stateless JSON-RPC (MCP streamable HTTP, JSON responses).
--
-- Requests alternate items_save and items_get (a save, then a get of the same
-- object); each thread spreads them over BENCH_OBJECTS objects of its own, so
-- writers rarely wait on one another's row lock. With BENCH_SAVES_ONLY=1 every
-- request is a save (the warm-up, which creates the objects the gets read).
-- With BENCH_TOOLS_LIST=1 every request (after the warm-up) is a tools/list instead.
-- BENCH_COLLECTION (default items) names the collection; with BENCH_SPACE the objects
-- are in that space (a shared collection's <collection>_save/_get with "space"), and
-- with BENCH_LIST=1 every request, the warm-up's too, lists the first 10 objects.
-- BENCH_SPACE may name several spaces, comma-separated: each object is then in one of
-- them (object k of thread t in space (t-1)*BENCH_OBJECTS+k, modulo their number), so
-- with as many spaces as objects no two writers share a space.
-- BENCH_TOKEN, when set, is sent as the bearer token. A response that is not
-- HTTP 200 or is a tool error counts as an error. done() prints one JSON line:
-- requests, duration, errors and latency percentiles in microseconds.

local token = os.getenv("BENCH_TOKEN") or ""
local objects = tonumber(os.getenv("BENCH_OBJECTS") or "8")
local saves_only = os.getenv("BENCH_SAVES_ONLY") == "1"
local tools_list = os.getenv("BENCH_TOOLS_LIST") == "1"
local collection = os.getenv("BENCH_COLLECTION") or "items"
local spaces = {}
for name in string.gmatch(os.getenv("BENCH_SPACE") or "", "[^,]+") do
  table.insert(spaces, name)
end
local lists = os.getenv("BENCH_LIST") == "1"

-- The "space" argument of object k (0-based) of this thread, or "" for personal objects.
local function where(k)
  if #spaces == 0 then
    return ""
  end
  return string.format('"space":"%s",', spaces[((tid - 1) * objects + k) % #spaces + 1])
end
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

counter = 0
errors = 0

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
  if token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  counter = counter + 1
  if tools_list and not saves_only then
    return wrk.format(nil, nil, nil,
      string.format('{"jsonrpc":"2.0","id":%d,"method":"tools/list"}', counter))
  end
  if lists then
    return wrk.format(nil, nil, nil, string.format(
      '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":' ..
      '{"name":"%s_list","arguments":{%s"page_size":10}}}', counter, collection, where(0)))
  end
  local k = math.floor((counter - 1) / 2) % objects
  if saves_only then
    k = (counter - 1) % objects
  end
  local object = string.format("bench-%d-%d", tid, k)
  local call
  if saves_only or counter % 2 == 1 then
    call = string.format(
      '{"name":"%s_save","arguments":{%s"id":"%s","data":{"n":%d,"text":"hello world"}}}',
      collection, where(k), object, counter)
  else
    call = string.format('{"name":"%s_get","arguments":{%s"id":"%s"}}', collection, where(k),
      object)
  end
  local body = string.format('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}',
    counter, call)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"isError":true', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local errs = 0
  for _, thread in ipairs(threads) do
    errs = errs + (thread:get("errors") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, errs,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
