-- wrk script: POST batches of realistic ~600-byte track events with messageIds unique per run.
-- BATCH (events per request; 0 = single /v1/track calls), RUN (a run id) and AUTH come from the env.
local counter = 0
local thread_id = 0
local threads = {}
local batch = tonumber(os.getenv("BATCH") or "100")
local run = os.getenv("RUN") or "r"
local auth = os.getenv("AUTH") or ""
local categories = {"Shoes", "Shirts", "Hats", "Bags", "Socks"}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid
end

local function event(n)
  counter = counter + 1
  local user = (counter * 7919) % 200000
  return string.format(
    '{"type":"track","userId":"user_%d","anonymousId":"a7c1e2d4-%08d","event":"Product Viewed",' ..
    '"messageId":"%s-%d-%d","timestamp":"2026-11-20T10:%02d:%02d.000Z","properties":{"product_id":"sku_%d",' ..
    '"category":"%s","price":49.99,"currency":"USD","name":"Trail running shoe","brand":"Acme"},' ..
    '"context":{"library":{"name":"analytics.js","version":"4.1.0"},"ip":"203.0.113.5",' ..
    '"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",' ..
    '"page":{"path":"/p/%d","url":"https://shop.example.com/p/%d","title":"Trail running shoe"}}}',
    user, user, run, thread_id, counter, counter % 60, counter % 60, counter % 5000,
    categories[(counter % 5) + 1], counter % 5000, counter % 5000)
end

request = function()
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = auth}
  if batch == 0 then
    return wrk.format("POST", "/v1/track", headers, event(1))
  end
  local parts = {}
  for i = 1, batch do
    parts[i] = event(i)
  end
  return wrk.format("POST", "/v1/batch", headers, '{"batch":[' .. table.concat(parts, ",") .. ']}')
end

function done(summary, latency, requests)
  local codes = {}
  io.write(string.format("STATUS non2xx=%d errors_connect=%d errors_read=%d errors_timeout=%d\n",
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.timeout))
  io.write(string.format("LAT p50=%.3f p99=%.3f max=%.3f\n", latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
