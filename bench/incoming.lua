-- wrk script: incoming_call events with a unique reference_id each.
--
-- CALLERS distinct caller numbers are cycled through (0 = a new caller for
-- every request, so every call is a Score cache miss). Each wrk thread
-- numbers its references apart so that two threads never send the same.
local callers = tonumber(os.getenv("CALLERS") or "0")
-- RUN keeps the callers and references of one run apart from another's,
-- so that a measured run after a warm-up is still all cache misses.
local run = tonumber(os.getenv("RUN") or "0")
local counter = 0
local threads = 0

-- Runs in the main Lua state; thread:set() gives each thread's own state a
-- global `thread_id` (a local of the same name would hide it).
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local n = counter
  if callers > 0 then
    n = counter % callers
  else
    n = (run * 16 + thread_id) * 10000000 + counter
  end
  -- 1 555 2xx xxxx: a valid NANP area code and exchange.
  local caller = string.format("15552%06d", n % 1000000)
  if callers == 0 then
    caller = string.format("1%03d%d%06d", 200 + math.floor(n / 10000000) % 700,
      2 + math.floor(n / 1000000) % 8, n % 1000000)
  end
  local body = string.format(
    '{"event":"incoming_call","reference_id":"R%d-T%d-%d","data":{"to":"15555550100","from":"%s"}}',
    run, thread_id, counter, caller)
  return wrk.format(nil, nil, nil, body)
end
