-- wrk script of benchmarks/runtime_bench.py: POSTs JSON bodies in turn (the file named by the
-- first argument holds one per line) and counts the answers that are not 200 or do not carry one
-- prediction per row (the second argument), so that a server answering errors fast cannot win.
-- Prints one line "BENCH {json}" at the end.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  requests = {}
  for line in io.lines(args[1]) do
    if line ~= "" then
      table.insert(requests, wrk.format("POST", nil, {["Content-Type"] = "application/json"},
                                        line))
    end
  end
  expected = tonumber(args[2])
  good, bad, last_status, next_request = 0, 0, 0, 0
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

local function predictions(body)
  local inner = body:match('"predictions"%s*:%s*%[(.-)%]')
  if inner == nil then
    return -1
  end
  local _, count = inner:gsub("[^,%s][^,]*", "")
  return count
end

function response(status, headers, body)
  if status == 200 and predictions(body) == expected then
    good = good + 1
  else
    bad = bad + 1
    last_status = status
  end
end

function done(summary, latency, requests)
  local good, bad, status = 0, 0, 0
  for _, thread in ipairs(threads) do
    good = good + thread:get("good")
    bad = bad + thread:get("bad")
    if thread:get("last_status") ~= 0 then
      status = thread:get("last_status")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "micros": %d, "good": %d, "bad": %d, "bad_status": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, good, bad, status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end
