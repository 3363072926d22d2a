-- wrk script for the menu: MODE=prepare sends incoming_call for the
-- references S0..S<CALLS-1> (cycling; a repeat gets the same answer), and
-- MODE=speak sends speak_completed with digit 1 for them, in order, so
-- that each of the first CALLS requests turns a call at the menu into a
-- dial. Threads take every other reference so they never share one.
local mode = os.getenv("MODE") or "speak"
local calls = tonumber(os.getenv("CALLS") or "60000")
local counter = 0
local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  thread:set("nthreads", 0)
  threads = threads + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local i = (counter * 2 + thread_id) % calls
  local body
  counter = counter + 1
  if mode == "prepare" then
    body = string.format(
      '{"event":"incoming_call","reference_id":"S%d","data":{"to":"15555550100","from":"1555520%04d"}}',
      i, i % 10000)
  else
    body = string.format(
      '{"event":"speak_completed","reference_id":"S%d","data":{"status":"speak_successful","collected_digits":"1"}}',
      i)
  end
  return wrk.format(nil, nil, nil, body)
end
