-- wrk script for instruction counts: one connection sends COUNT
-- incoming_call events (CALLERS distinct callers, 0 = all new) and stops.
local count = tonumber(os.getenv("COUNT") or "2000")
local callers = tonumber(os.getenv("CALLERS") or "0")
local prefix = os.getenv("PREFIX") or "C"
local sent = 0
local done = 0

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  sent = sent + 1
  local n = callers > 0 and (sent % callers) or sent
  local body = string.format(
    '{"event":"incoming_call","reference_id":"%s%d","data":{"to":"15555550100","from":"1%03d2%06d"}}',
    prefix, sent, 300 + math.floor(n / 1000000) % 600, n % 1000000)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  done = done + 1
  if done >= count then
    wrk.thread:stop()
  end
end
