-- wrk script: incoming_call events with a unique reference_id each.
--
-- The reference_id is shaped like TeleSign's, 32 hex digits at random
-- (96 random bits and the thread's counter), because the store indexes
-- calls by it: consecutive references would land on the same index page
-- and flatter the store (cache-hit incoming_call measured 34,000/s with
-- them against 21,000-25,000/s with these, bench/README.md).
--
-- CALLERS distinct caller numbers are cycled through (0 = a new caller for
-- every request, so every call is a Score cache miss). Each wrk thread
-- seeds its own generator, so that two threads never send the same one.
local callers = tonumber(os.getenv("CALLERS") or "0")
-- RUN keeps the callers of one run apart from another's,
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
  math.randomseed(os.time() * 16 + thread_id)
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
  local ref = string.format("%08X%08X%08X%08X", math.random(0, 0xFFFFFFFF),
    math.random(0, 0xFFFFFFFF), math.random(0, 0xFFFFFFFF), counter)
  local body = string.format(
    '{"event":"incoming_call","reference_id":"%s","data":{"to":"15555550100","from":"%s"}}',
    ref, caller)
  return wrk.format(nil, nil, nil, body)
end
